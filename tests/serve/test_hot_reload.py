"""Exporting a new version while the server is under load: no failed request, then the new one serves."""
import base64
import json
import os
import threading
import time

import numpy as np
import tensorflow as tf

from fmkeras.config import HeadConfig, ModelConfig
from fmkeras.export import export_saved_model
from fmkeras.serve.client import model_status
from fmkeras.transfer import build_classifier
from tests.serve.conftest import make_server
from reliability.serve_process import Connection
from tests.serve.test_fuzz import GOOD


def _wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_new_version_is_hot_loaded_under_load_without_failed_requests(tmp_path, trained, fashion):
    base = str(tmp_path / "fashion")
    export_saved_model(trained, base, fashion.class_names, (28, 28, 1))
    # A half-written version 5 (no fmkeras.json yet) must never be loaded.
    os.makedirs(os.path.join(base, "5", "variables"))
    open(os.path.join(base, "5", "saved_model.pb"), "wb").close()
    server = make_server(base)
    body = json.dumps({"instances": [{"b64": base64.b64encode(tf.io.encode_png(fashion.x_test[0]).numpy()).decode()}]
                       }).encode()
    results, stop = [], threading.Event()

    def client():
        conn = Connection(server.server_address[1])
        while not stop.is_set():
            status, data, _ = conn.send("POST", GOOD, body)
            results.append((status, json.loads(data)["predictions"][0]["probabilities"] if status == 200 else data))

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        assert _wait_for(lambda: len(results) > 20)
        other = build_classifier(ModelConfig(backbone_options={"filters": (4, 8)}, head=HeadConfig(dense_units=(16,))),
                                 (28, 28, 1), 10)  # new random weights: its answers differ from version 1
        version, _ = export_saved_model(other, base, fashion.class_names, (28, 28, 1))
        assert version == 6
        assert _wait_for(lambda: [s["version"] for s in model_status(server.url, "fashion")
                                  if s["state"] == "AVAILABLE"] == ["6"])
        served_before = len(results)
        assert _wait_for(lambda: len(results) > served_before + 20)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        status_list = model_status(server.url, "fashion")
        server.close()
    failed = [r for r in results if r[0] != 200]
    assert not failed, failed[:3]
    old = trained(fashion.x_test[:1].astype("float32")).numpy()[0]
    new = other(fashion.x_test[:1].astype("float32")).numpy()[0]
    assert not np.allclose(old, new, atol=1e-3)
    answers = [np.asarray(r[1]) for r in results]
    assert np.allclose(answers[0], old, atol=1e-5) and np.allclose(answers[-1], new, atol=1e-5)
    assert all(np.allclose(a, old, atol=1e-5) or np.allclose(a, new, atol=1e-5) for a in answers)
    assert {s["version"]: s["state"] for s in status_list} == {"6": "AVAILABLE", "1": "END"}
    assert not any(name.startswith(".tmp") for name in os.listdir(base))
