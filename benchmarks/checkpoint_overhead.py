"""Cost of one resume checkpoint for the cnn_fashion recipe's model: file size, save and load time.

Run: python benchmarks/checkpoint_overhead.py   (prints one JSON object)
Compare `save_seconds_median` with a training step to choose `train.backup_every_steps`.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from fmkeras.recipes import load_recipe  # noqa: E402
from fmkeras.train import compile_model  # noqa: E402
from fmkeras.train.checkpoints import CheckpointStore  # noqa: E402
from fmkeras.train.resume import Position, StepCheckpoint  # noqa: E402
from fmkeras.transfer import build_classifier  # noqa: E402


def main(repeats: int = 7) -> dict:
    cfg = load_recipe("cnn_fashion")
    model = build_classifier(cfg.model, (28, 28, 1), 10)
    compile_model(model, cfg.train, total_steps=1000)
    model.optimizer.build(model.trainable_variables)
    with tempfile.TemporaryDirectory() as directory:
        callback = StepCheckpoint(CheckpointStore(directory), every=100, steps_per_epoch=422, epochs=12,
                                  peers={}, facts={})
        callback.set_model(model)
        saves = []
        for step in range(1, repeats + 1):
            start = time.perf_counter()
            path = callback.save(Position(0, step))
            saves.append(time.perf_counter() - start)
        start = time.perf_counter()
        CheckpointStore(directory).load_latest()
        load = time.perf_counter() - start
        size = os.path.getsize(path)
    return {"benchmark": "checkpoint_overhead", "model": "cnn_fashion", "params": model.count_params(),
            "file_bytes": size, "save_seconds_median": round(sorted(saves)[len(saves) // 2], 4),
            "load_seconds": round(load, 4), "cpu_count": os.cpu_count()}


if __name__ == "__main__":
    print(json.dumps(main()))
