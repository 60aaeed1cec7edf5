"""Training throughput: fmkeras' trainer vs a hand-written model.fit of the same model and data.

Both fit the same CNN on the same real Fashion-MNIST images, one epoch each, alternating
A/B rounds in one process so machine noise hits both. Goal: fmkeras >= 0.95x the plain fit.

Run: python benchmarks/train_throughput.py [--images 12800] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from fmkeras.config import DataConfig, HeadConfig, ModelConfig, TrainConfig  # noqa: E402
from fmkeras.data import build_datasets, load_source  # noqa: E402
from fmkeras.train import fit  # noqa: E402
from fmkeras.transfer import build_classifier  # noqa: E402

MODEL = ModelConfig(backbone_options={"filters": (32, 64, 128)},
                    head=HeadConfig(pooling="flatten", dense_units=(128,), dropout=0.3))


def plain_fit(source, images: int, batch: int) -> float:
    """The baseline a user would write by hand: from_tensor_slices -> shuffle -> batch -> fit."""
    x = source.x_train[:images].astype("float32")
    y = source.y_train[:images]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(10000, seed=1).batch(batch).prefetch(tf.data.AUTOTUNE)
    model = build_classifier(MODEL, (28, 28, 1), 10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.take(2), verbose=0)  # build + trace outside the timed epoch
    start = time.perf_counter()
    model.fit(ds, verbose=0)
    return images / (time.perf_counter() - start)


def fmkeras_fit(source, images: int, batch: int) -> float:
    """fmkeras' pipeline (cache, shuffle, batch, prefetch) and trainer with all its callbacks."""
    cfg = DataConfig(limit_train=images, validation_split=0.0)
    train_cfg = TrainConfig(epochs=1, batch_size=batch, verbose=0)
    data = build_datasets(source, cfg, batch)
    model = build_classifier(MODEL, data.image_shape, 10)
    with tempfile.TemporaryDirectory() as run_dir:
        warm = fit(model, data, train_cfg, run_dir)  # epoch 1 fills the cache and traces
        result = fit(model, data, train_cfg, os.path.join(run_dir, "timed"), compile=False)
    del warm
    return images / result.seconds  # the whole fit() call, as for the plain baseline


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    source = load_source(DataConfig())
    plain, ours = [], []
    for _ in range(args.rounds):
        plain.append(plain_fit(source, args.images, args.batch))
        ours.append(fmkeras_fit(source, args.images, args.batch))
    ratio = statistics.median(o / p for o, p in zip(ours, plain))
    print(json.dumps({
        "benchmark": "train_throughput", "images_per_epoch": args.images, "batch_size": args.batch,
        "plain_fit_images_per_second": [round(v) for v in plain],
        "fmkeras_images_per_second": [round(v) for v in ours],
        "median_ratio_fmkeras_over_plain": round(ratio, 3), "goal": 0.95, "meets_goal": ratio >= 0.95,
    }, indent=2))


if __name__ == "__main__":
    main()
