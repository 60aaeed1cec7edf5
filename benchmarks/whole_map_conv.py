"""WholeMapConv2D vs Keras' Conv2D in the cnn_fashion_fast net's training step.

`cnn`'s `last_conv_valid` conv sees a map of its kernel's size (3x3 -> 1x1): one output per image. fmkeras
computes it as one matrix product (fmkeras.backbones.cnn.WholeMapConv2D) instead of TF's convolution. This
builds the recipe's classifier twice - once as shipped, once with that layer a plain Conv2D (same weights
shapes, same maths) - and fits each on the same in-memory random batches, alternating rounds in one process
so machine noise hits both. Reported: training images per CPU-second (process time, all threads; steadier
than wall time on a shared machine), best of each variant's rounds, in the precision `train.precision=auto`
picks here. Target: the matrix product >= 1.05x the Conv2D's images per CPU-second; exit status 1 otherwise.

Run: python benchmarks/whole_map_conv.py [--rounds 3] [--images 15360] [--recipe cnn_fashion_fast] [--set K=V]
     (ONEDNN_MAX_CPU_ISA=AVX2 in front: as on a CPU without AMX)
"""
from __future__ import annotations

import argparse
import json
import os
import time
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fmkeras.backbones import cnn  # noqa: E402
from fmkeras.config import apply_overrides, parse_override  # noqa: E402
from fmkeras.recipes import load_recipe  # noqa: E402
from fmkeras.train.trainer import resolve_precision, restores_dtype_policy, set_precision  # noqa: E402
from fmkeras.transfer import build_classifier  # noqa: E402

TARGET_SPEEDUP = 1.05


def build(recipe, whole_map: bool) -> keras.Model:
    """The recipe's classifier; with whole_map=False its last conv is Keras' Conv2D."""
    if whole_map:
        model = build_classifier(recipe.model, (28, 28, 1), 10)
    else:
        with mock.patch.object(cnn, "WholeMapConv2D", keras.layers.Conv2D):
            model = build_classifier(recipe.model, (28, 28, 1), 10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def cpu_seconds_per_epoch(model, ds) -> float:
    start = time.process_time()
    model.fit(ds, epochs=1, verbose=0)
    return time.process_time() - start


@restores_dtype_policy
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="cnn_fashion_fast")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=15360)
    parser.add_argument("--set", action="append", default=[], help="recipe override, e.g. "
                        "model.backbone_options.last_conv_valid=true")
    args = parser.parse_args()
    overrides = dict(parse_override(item) for item in args.set)
    recipe = apply_overrides(load_recipe(args.recipe), overrides)
    if not recipe.model.backbone_options.get("last_conv_valid"):
        raise SystemExit(f"recipe {args.recipe!r} has no model.backbone_options.last_conv_valid: nothing to compare")
    precision = resolve_precision(recipe.train.precision)
    set_precision(precision)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, args.images)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(recipe.train.batch_size).cache()
    models = {"conv2d": build(recipe, False), "whole_map_conv2d": build(recipe, True)}
    for name, model in models.items():  # the comparison is what it says
        kinds = {type(layer) for layer in model.get_layer("backbone").layers}
        assert (cnn.WholeMapConv2D in kinds) == (name == "whole_map_conv2d"), name
    seconds = {name: [] for name in models}
    for model in models.values():
        cpu_seconds_per_epoch(model, ds)  # build, trace, fill the cache
    for _ in range(args.rounds):
        for name, model in models.items():
            seconds[name].append(cpu_seconds_per_epoch(model, ds))
    rate = {name: round(args.images / min(s), 1) for name, s in seconds.items()}
    speedup = round(rate["whole_map_conv2d"] / rate["conv2d"], 3)
    print(json.dumps({"recipe": args.recipe, "overrides": overrides, "precision": precision, "batch_size": recipe.train.batch_size,
                      "images": args.images, "rounds": args.rounds,
                      "cpu_seconds": {k: [round(v, 2) for v in s] for k, s in seconds.items()},
                      "train_images_per_cpu_second": rate, "speedup": speedup,
                      "target_speedup": TARGET_SPEEDUP, "meets_target": speedup >= TARGET_SPEEDUP}, indent=2))
    return 0 if speedup >= TARGET_SPEEDUP else 1


if __name__ == "__main__":
    raise SystemExit(main())
