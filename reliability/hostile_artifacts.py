"""Scenario 7: hostile model files are refused by every fmkeras loader; the canary never appears.

Builds, in a scratch directory, model files that run code or exhaust resources when loaded:
a .keras with a Lambda layer (marshalled bytecode that touches a canary file), a config.json
that imports `os.system`, the `keras.config.enable_unsafe_deserialization` gadget, a legacy
.h5 with a Lambda, a .keras with a path-traversal member and one with a zip-bomb member, and a
config.json nested 100k deep. Each goes through `transfer.weights.load_weight_file`
(`--weights=`), `experiment.finished_runs.load_model_for_eval` (`fmkeras evaluate --model=`) and
`model_files.keras_file.load_keras_model`; every one must raise UnsafeModelError.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import zipfile

CANARY = "CANARY_CREATED"


def _tiny_model(layers=()):
    import keras
    inputs = keras.Input((4,), name="x")
    x = inputs
    for layer in layers:
        x = layer(x)
    outputs = keras.layers.Dense(2, name="out")(x)
    return keras.Model(inputs, outputs)


def _rewrite(src: str, dst: str, config_fn=None, extra: dict = None, config_text: str = None):
    """Copies a .keras zip, transforming config.json and adding members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json":
                if config_text is not None:
                    data = config_text.encode()
                elif config_fn is not None:
                    data = json.dumps(config_fn(json.loads(data))).encode()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)


def _set_activation(config, value):
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer["config"]["activation"] = value
    return config


def _replace_dense(config, entry: dict):
    """Puts `entry` where the Dense layer was (the inspector must refuse it wherever it sits)."""
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer.update(entry)
    return config


def _layer(class_name: str, registered_name=None, **config) -> dict:
    return {"module": "keras.layers", "class_name": class_name, "registered_name": registered_name,
            "config": {"name": "out", **config}}


def _npz() -> bytes:
    import io

    import numpy as np
    out = io.BytesIO()
    np.savez(out, w=np.zeros(2))
    return out.getvalue()


def build_artifacts(directory: str) -> dict:
    """Writes the hostile files into `directory`; returns {scenario name: path} plus 'benign'."""
    import keras
    os.makedirs(directory, exist_ok=True)
    canary = os.path.join(directory, CANARY)
    paths = {}
    benign = os.path.join(directory, "benign.keras")
    _tiny_model().save(benign)
    paths["benign"] = benign
    # The lambda's body creates the canary whenever Keras rebuilds the model from the file.
    touch = eval(f"lambda t: (open({canary!r}, 'a').close(), t)[1]")  # noqa: S307 (the hostile payload)
    lambda_model = _tiny_model([keras.layers.Lambda(touch, name="payload")])
    paths["lambda_keras"] = os.path.join(directory, "lambda.keras")
    lambda_model.save(paths["lambda_keras"])
    paths["lambda_h5"] = os.path.join(directory, "lambda.h5")
    lambda_model.save(paths["lambda_h5"])
    paths["module_import"] = os.path.join(directory, "module_import.keras")
    _rewrite(benign, paths["module_import"], lambda c: _set_activation(
        c, {"module": "os", "class_name": "system", "config": f"touch {canary}", "registered_name": "system"}))
    paths["unsafe_gadget"] = os.path.join(directory, "unsafe_gadget.keras")
    _rewrite(benign, paths["unsafe_gadget"], lambda c: _set_activation(
        c, {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization",
            "registered_name": "enable_unsafe_deserialization"}))
    paths["path_traversal"] = os.path.join(directory, "traversal.keras")
    _rewrite(benign, paths["path_traversal"], extra={f"../../{CANARY}": b"x", "assets/../../evil": b"x"})
    paths["zip_bomb"] = os.path.join(directory, "zip_bomb.keras")
    _rewrite(benign, paths["zip_bomb"], extra={"assets/bomb": b"\0" * (64 << 20)})
    paths["deep_nesting"] = os.path.join(directory, "deep.keras")
    _rewrite(benign, paths["deep_nesting"], config_text="[" * 100_000 + "]" * 100_000)
    hostile_layers = {  # each loads a file or foreign code at load time, or swaps in another registered class
        "vocabulary_path": _layer("StringLookup", vocabulary=os.path.join(directory, "vocab.txt")),
        "vocabulary_url": _layer("TextVectorization", vocabulary="gs://attacker-bucket/vocab.txt"),
        "tfsm_layer": _layer("TFSMLayer", filepath=directory, call_endpoint="serve"),
        "torch_wrapper": _layer("TorchModuleWrapper", module={"class_name": "__bytes__", "config": {"value": "00"}}),
        "registered_name_swap": _layer("Dense", registered_name="keras_hub>SomethingElse", units=2),
    }
    for name, entry in hostile_layers.items():
        paths[name] = os.path.join(directory, f"{name}.keras")
        _rewrite(benign, paths[name], lambda c, entry=entry: _replace_dense(c, entry))
    paths["npz_weights"] = os.path.join(directory, "npz_weights.keras")
    _rewrite(benign, paths["npz_weights"], extra={"model.weights.npz": _npz()})
    if os.path.exists(canary):  # building the Lambda model traced the payload once; start clean
        os.remove(canary)
    return paths


def _loaders():
    from fmkeras.experiment.finished_runs import load_model_for_eval
    from fmkeras.model_files.safe_load import load_keras_model
    from fmkeras.transfer.weights import load_weight_file
    return {
        "load_weight_file": lambda p: load_weight_file(_tiny_model(), p),
        "evaluate_model": load_model_for_eval,
        "load_keras_model": load_keras_model,
    }


def run(workdir: str) -> dict:
    """Tries every hostile file with every loader; returns the scoreboard entry."""
    from fmkeras.model_files.safe_load import UnsafeModelError
    if os.path.isdir(workdir):
        shutil.rmtree(workdir)
    started = time.monotonic()
    paths = build_artifacts(workdir)
    results, accepted, crashes = {}, [], 0
    for name, path in paths.items():
        for loader_name, loader in _loaders().items():
            if name == "benign" or (path.endswith(".h5") and loader_name != "load_weight_file"):
                continue
            try:
                loader(path)
                outcome = "ACCEPTED"
                accepted.append(f"{name} via {loader_name}")
            except UnsafeModelError as err:
                outcome = "refused: " + str(err).split(": ", 1)[-1][:120]
            except Exception as err:  # anything else is a loader crash, counted as such
                outcome = f"crash: {type(err).__name__}: {str(err)[:120]}"
                crashes += 1
            results[f"{name}/{loader_name}"] = outcome
    benign_ok = _loaders()["load_weight_file"](paths["benign"]) is not None
    canary = os.path.exists(os.path.join(workdir, CANARY))
    return {"files": len(paths) - 1, "attempts": len(results), "accepted": accepted, "crashes": crashes,
            "canary_created": canary, "benign_loads": benign_ok, "results": results,
            "seconds": round(time.monotonic() - started, 1),
            "ok": not accepted and not crashes and not canary and benign_ok}
