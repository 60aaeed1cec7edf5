"""Pruning: the default recipe trained dense and with gradual magnitude pruning to 50/75/90% sparsity.

For each sparsity: test accuracy (and its drop from dense), the measured sparsity of the Conv/Dense kernels,
and the gzip size of the exported SavedModel (tar of the version directory) and of the float TFLite file.
Pruned weights are exact zeros in plain layers (fmkeras.train.pruning), which is what gzip compresses;
TF Model Optimization is not used (it does not support Keras 3 models).

Run: python benchmarks/prune.py [--sparsities 0,0.5,0.75,0.9] [--set train.epochs=2 ...]
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import sys
import tarfile
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from fmkeras.config import apply_overrides, parse_override  # noqa: E402
from fmkeras.experiment import run_training  # noqa: E402
from fmkeras.export.tflite import convert_tflite  # noqa: E402
from fmkeras.recipes import load_recipe  # noqa: E402


def gzip_size_of_dir(path: str) -> int:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(path, arcname=".")
    return len(buffer.getvalue())


def one_run(sparsity: float, overrides: dict, root: str) -> dict:
    cfg = apply_overrides(load_recipe("cnn_fashion"), {
        "run_root": os.path.join(root, "runs"), "export.base_dir": os.path.join(root, "saved_models"),
        "export.model_name": f"sparsity_{sparsity}", "train.verbose": 0, "train.prune_sparsity": sparsity,
        **overrides})
    report = run_training(cfg)
    model = keras.models.load_model(os.path.join(report["run_dir"], "model.keras"))
    tflite = convert_tflite(model, "none")
    return {"target_sparsity": sparsity, "test_accuracy": report["test"]["accuracy"],
            "measured_sparsity": (report["pruning"] or {}).get("sparsity", 0.0),  # None for a dense run
            "saved_model_gzip_bytes": gzip_size_of_dir(report["export"]["path"]),
            "tflite_gzip_bytes": len(gzip.compress(tflite)), "tflite_bytes": len(tflite),
            "train_seconds": report["train_seconds"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sparsities", default="0,0.5,0.75,0.9")
    parser.add_argument("--set", action="append", default=[], help="recipe override, e.g. train.epochs=2")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    overrides = dict(parse_override(item) for item in args.set)
    runs = []
    with tempfile.TemporaryDirectory() as root, contextlib.redirect_stdout(sys.stderr):
        for sparsity in (float(s) for s in args.sparsities.split(",")):
            runs.append(one_run(sparsity, overrides, root))
    dense = next((r for r in runs if r["target_sparsity"] == 0), None)
    for run in runs:
        if dense is not None:
            run["accuracy_drop"] = round(dense["test_accuracy"] - run["test_accuracy"], 4)
            run["saved_model_gzip_ratio"] = round(run["saved_model_gzip_bytes"] / dense["saved_model_gzip_bytes"], 3)
            run["tflite_gzip_ratio"] = round(run["tflite_gzip_bytes"] / dense["tflite_gzip_bytes"], 3)
    text = json.dumps({"benchmark": "prune", "recipe": "cnn_fashion", "overrides": overrides, "runs": runs}, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
