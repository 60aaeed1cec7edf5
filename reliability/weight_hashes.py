"""Scenario 8: tampered pretrained-weight files are refused with a clear error and no network call.

Two cases: an fmkeras weight file with a `.sha256` sidecar, modified after it was written; a
keras.applications preset file (EfficientNetB0 no-top) in a scratch Keras cache, replaced with
other bytes. Sockets and urllib are patched to record (and block) any network attempt.
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
import urllib.request


@contextlib.contextmanager
def _network_recorder(attempts: list):
    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network disabled by the reliability harness")
    saved = socket.socket.connect, urllib.request.urlretrieve, urllib.request.urlopen
    socket.socket.connect = refuse
    urllib.request.urlretrieve = urllib.request.urlopen = refuse
    try:
        yield
    finally:
        socket.socket.connect, urllib.request.urlretrieve, urllib.request.urlopen = saved


def run(workdir: str) -> dict:
    import keras
    from fmkeras.backbones.registry import BackboneSpec, WeightPreset
    from fmkeras.errors import WeightsError
    from fmkeras.model_files.weight_hashes import write_sha256_sidecar
    from fmkeras.transfer.weights import build_backbone, load_weight_file
    started = time.monotonic()
    os.makedirs(os.path.join(workdir, "keras_home", "models"), exist_ok=True)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    weights = os.path.join(workdir, "backbone.weights.h5")
    model.save_weights(weights)
    write_sha256_sidecar(weights)
    with open(weights, "r+b") as fh:
        fh.seek(-64, os.SEEK_END)
        fh.write(b"\xff" * 8)
    cached = os.path.join(workdir, "keras_home", "models", "efficientnetb0_notop.h5")
    with open(cached, "wb") as fh:
        fh.write(b"tampered")
    preset = WeightPreset("efficientnetb0_notop.h5", "https://storage.googleapis.com/keras-applications/"
                          "efficientnetb0_notop.h5", "50bc09e76180e00e4465e1a485ddc09d")  # Keras' published md5
    spec = BackboneSpec(name="efficientnetb0", preprocess=lambda x: x, default_input_size=(32, 32),
                        builder=lambda shape, weights=None: keras.applications.EfficientNetB0(
                            include_top=False, weights=weights, input_shape=shape),
                        presets={"imagenet": preset})
    cases, attempts = {}, []
    saved_home = os.environ.get("KERAS_HOME")
    os.environ["KERAS_HOME"] = os.path.join(workdir, "keras_home")  # where fmkeras looks for preset files
    try:
        with _network_recorder(attempts):
            for name, load in {"sidecar": lambda: load_weight_file(model, weights),
                               "keras_cache": lambda: build_backbone(spec, (32, 32, 3), "imagenet")}.items():
                try:
                    load()
                    cases[name] = "ACCEPTED"
                except WeightsError as err:
                    cases[name] = "refused: " + str(err)[:160]
    finally:
        if saved_home is None:
            os.environ.pop("KERAS_HOME")
        else:
            os.environ["KERAS_HOME"] = saved_home
    refused = sum(v.startswith("refused") for v in cases.values())
    return {"cases": cases, "refused": refused, "network_attempts": len(attempts),
            "seconds": round(time.monotonic() - started, 1), "ok": refused == len(cases) and not attempts}
