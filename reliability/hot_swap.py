"""Scenario 6: version hot-swap under load, against a real `fmkeras serve` process.

Clients predict continuously while
  v2 is exported with `export_saved_model` (temp dir + rename), then
  v3 is copied into `<base>/3/` by a slow copier, one file at a time in chunks, fmkeras.json
     FIRST, then variables.index, the variables and saved_model.pb last (so the three files the
     old completeness check looked at exist long before the version is whole).
Every answer must be 200 and equal (1e-5) to what exactly one complete version computes
(Keras predict of v1, v2 or v3): never a mix or a partial model. The model status is polled
throughout: no version may ever show a failed load (the server must not even try a partial
directory). Finally the server is restarted with `--versions=1` (TF Serving's "specific"
version policy): it rolls back to v1 although v3 is the latest on disk.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time

import numpy as np

from reliability.serve_process import (Connection, ServerProcess, export_model, http_request, pixels_body,
                                       probabilities, test_images)

ATOL = 1e-5


def slow_copy(source: str, target: str, seconds: float, first: str = "fmkeras.json"):
    """Copies a version dir file by file in 4 KiB chunks, taking ~`seconds`: `first`, then the rest in
    reverse name order (variables.index before variables.data, both before saved_model.pb), so every
    file the server could check for exists while others are still missing or half written."""
    files = sorted((os.path.relpath(os.path.join(r, f), source) for r, _, fs in os.walk(source) for f in fs),
                   reverse=True)
    files.sort(key=lambda f: f != first)
    chunks = sum(max(1, -(-os.path.getsize(os.path.join(source, f)) // 4096)) for f in files)
    pause = seconds / chunks
    for name in files:
        os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
        with open(os.path.join(source, name), "rb") as src, open(os.path.join(target, name), "wb") as dst:
            while True:
                chunk = src.read(4096)
                if not chunk:
                    break
                dst.write(chunk)
                dst.flush()
                time.sleep(pause)
    return {"files": files, "chunks": chunks}


class Load:
    """Client threads predicting one image until stopped; records (time, status, probabilities)."""

    def __init__(self, port: int, path: str, body: bytes, clients: int, timeout: float):
        self.results, self._lock, self._stop = [], threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(port, path, body, timeout), daemon=True)
                        for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _client(self, port, path, body, timeout):
        conn = Connection(port, timeout)
        while not self._stop.is_set():
            status, data, _ = conn.send("POST", path, body)
            probs = probabilities(data) if status == 200 else data[:200]
            with self._lock:
                self.results.append((time.monotonic(), status, probs))
        conn.close()

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(timeout=60)


def _status_watch(port: int, model: str, stop: threading.Event, seen: list):
    conn = Connection(port, 10)
    while not stop.wait(0.05):
        status, data, _ = conn.send("GET", f"/v1/models/{model}")
        if status == 200:
            seen.extend(json.loads(data)["model_version_status"])
    conn.close()


def _wait_for_version(load: Load, expected: np.ndarray, timeout: float) -> float:
    """Seconds until the newest answer matches `expected` (then 20 more answers), or -1 on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.05)
        if load.results and load.results[-1][1] == 200 and np.allclose(load.results[-1][2], expected, atol=ATOL):
            took, count = time.monotonic() - started, len(load.results)
            while len(load.results) < count + 20 and time.monotonic() - started < timeout:
                time.sleep(0.05)
            return took
    return -1.0


def run(workdir: str, clients: int = 4, copy_seconds: float = 10.0, swaps: int = 1, timeout: float = 60.0) -> dict:
    """`swaps` rounds of (rename export, slow copy); then a pinned-version rollback."""
    started = time.monotonic()
    base = os.path.join(workdir, "saved_models", "swap")
    os.makedirs(workdir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="staging-", dir=workdir)
    image = test_images(1, seed=3)
    body = pixels_body(image)
    expected = {}
    model, _ = export_model(base, seed=1)
    expected[1] = model.predict(image.astype("float32"), verbose=0)
    failures, timeline, seen = [], [], []
    with ServerProcess(base, workdir, "--poll_seconds=0.1") as server:
        load = Load(server.port, server.predict_path, body, clients, timeout)
        stop_watch = threading.Event()
        watcher = threading.Thread(target=_status_watch, args=(server.port, server.model, stop_watch, seen))
        watcher.start()
        version = 1
        for round_ in range(swaps):
            version += 1
            model, _ = export_model(base, seed=version)
            expected[version] = model.predict(image.astype("float32"), verbose=0)
            timeline.append({"version": version, "how": "temp+rename",
                             "seconds_to_serve": round(_wait_for_version(load, expected[version], timeout), 2)})
            version += 1
            model, path = export_model(base, seed=version, target=staging)
            expected[version] = model.predict(image.astype("float32"), verbose=0)
            copied = slow_copy(path, os.path.join(base, str(version)), copy_seconds)
            shutil.rmtree(path)
            timeline.append({"version": version, "how": f"slow copy of {len(copied['files'])} files, "
                             f"{copied['chunks']} chunks, {copied['files'][0]} first",
                             "seconds_to_serve": round(_wait_for_version(load, expected[version], timeout), 2)})
        load.stop()
        stop_watch.set()
        watcher.join(timeout=30)
        rc, stop_seconds = server.terminate()
    results = load.results
    failed = [(s, p) for _, s, p in results if s != 200]
    foreign = [p for _, s, p in results if s == 200
               and sum(np.allclose(p, e, atol=ATOL) for e in expected.values()) != 1]
    load_errors = sorted({(s["version"], s["status"]["error_message"][:200]) for s in seen
                          if s["status"]["error_message"]})
    if failed:
        failures.append(f"{len(failed)} failed requests, e.g. {failed[:3]}")
    if foreign:
        failures.append(f"{len(foreign)} answers match no complete version")
    if load_errors:
        failures.append(f"the server tried to load an incomplete version: {load_errors[:3]}")
    if any(t["seconds_to_serve"] < 0 for t in timeline):
        failures.append(f"a new version was never served: {timeline}")
    if rc != 0:
        failures.append(f"server exit code {rc} on SIGTERM")
    rollback = _rollback(base, workdir, body, expected, version, failures)
    return {"ok": not failures, "failures": failures, "timeline": timeline, "requests_sent": len(results)
            + rollback.pop("requests"), "failed_requests": len(failed), "answers_matching_no_version": len(foreign),
            "status_polls": len(seen), "failed_loads_seen": load_errors, "rollback": rollback,
            "5xx_count": sum(1 for s, _ in failed if s is not None and s >= 500), "crashes": int(rc is None),
            "seconds": round(time.monotonic() - started, 1)}


def _rollback(base: str, workdir: str, body: bytes, expected: dict, latest: int, failures: list) -> dict:
    """Restart pinned to version 1 (`--versions=1`): answers are v1's although `latest` is on disk."""
    with ServerProcess(base, workdir, "--versions=1") as server:
        status, data, _ = http_request(server.port, "POST", server.predict_path, body)
        matches = status == 200 and np.allclose(probabilities(data), expected[1], atol=ATOL)
        latest_status, _, _ = http_request(server.port, "POST",
                                           server.predict_path.replace(":predict", "") + f"/versions/{latest}:predict",
                                           body)
    if not matches:
        failures.append(f"pinned --versions=1 did not serve version 1: HTTP {status} {data[:200]!r}")
    if latest_status != 404:
        failures.append(f"pinned --versions=1 still serves version {latest}: HTTP {latest_status}")
    return {"pinned": 1, "latest_on_disk": latest, "serves_v1": bool(matches), "latest_status": latest_status,
            "requests": 2}
