"""Real photos, real pretrained network: the photo recipe vs the same backbone from scratch vs pixels + LR.

On a folder of photos (default: hymenoptera, ants vs bees, train/ 244 photos, val/ 153, sizes 200-1000 px)
it runs, one after the other on the same machine:
- `pretrained`: `fmkeras train --recipe=efficientnet_lite0_transfer` (ImageNet EfficientNet-Lite0, frozen
  head stage then top blocks fine-tuned), evaluated on val/;
- `scratch`: the same backbone, recipe and epoch budget from random weights (everything trainable);
- `pixels_logistic_regression`: scikit-learn LogisticRegression on 32x32 RGB pixels (the floor any model
  should beat), fitted on train/, scored on val/;
- with `--seed_recipes`: a short run (`--seed_epochs`, default 1) of `resnet50v2_transfer` and
  `vgg16_transfer` with weights=none at 224 px, to show the seed recipes train on photos end to end
  (their ImageNet files cannot be downloaded here; accuracy after one epoch from scratch is not a result).
Everything goes through the public API (load_recipe + run_training), as the CLI does.

Run:    python benchmarks/transfer_photos.py [--data folder:DIR] [--seed_recipes]
Prints one JSON object. Exit status 1 when the pretrained recipe misses its target (>= 0.93 accuracy on
val/ within 600 s of training) or does not beat scratch and the pixel baseline.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fmkeras.config import apply_overrides  # noqa: E402
from fmkeras.experiment import run_training  # noqa: E402
from fmkeras.recipes import load_recipe  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "hymenoptera"))
TARGET_ACCURACY, TARGET_SECONDS = 0.93, 600.0


def train_recipe(recipe: str, data: str, work: str, **overrides) -> dict:
    """Runs `recipe` on `data` through run_training; returns the figures the benchmark reports."""
    cfg = apply_overrides(load_recipe(recipe), {"data.source": f"folder:{data}", "run_root": work,
                                                "export.enabled": False, "train.verbose": 0, **overrides})
    start = time.perf_counter()
    report = run_training(cfg)
    return {"recipe": recipe, "overrides": overrides, "accuracy": report["test"]["accuracy"],
            "evaluated_on": report["evaluated_on"], "num_train": report["num_train"],
            "num_test": report["num_test"], "train_seconds": report["train_seconds"],
            "wall_seconds": round(time.perf_counter() - start, 1), "skipped": report["skipped"],
            "stages": [{k: s[k] for k in ("stage", "epochs", "seconds", "trainable_params")} for s in report["stages"]]}


def _pixels(folder: str, size: int = 32) -> tuple:
    paths = sorted(glob.glob(os.path.join(folder, "*", "*")))
    classes = sorted({os.path.basename(os.path.dirname(p)) for p in paths})
    images, labels = [], []
    for path in paths:
        try:
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError:
            continue
        images.append(tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True).numpy().ravel())
        labels.append(classes.index(os.path.basename(os.path.dirname(path))))
    return np.stack(images) / 255.0, np.asarray(labels)


def pixels_logistic_regression(data: str) -> dict:
    """LogisticRegression on 32x32 RGB pixels, C picked from a small grid by 5-fold CV on train/."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    start = time.perf_counter()
    x_train, y_train = _pixels(os.path.join(data, "train"))
    x_val, y_val = _pixels(os.path.join(data, "val"))
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=[1e-3, 1e-2, 1e-1, 1.0], max_iter=2000))
    model.fit(x_train, y_train)
    return {"accuracy": round(float(model.score(x_val, y_val)), 4), "num_train": len(y_train),
            "num_test": len(y_val), "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="photo folder with train/<class> and val/<class>")
    parser.add_argument("--seed_recipes", action="store_true", help="also run resnet50v2/vgg16 recipes briefly")
    parser.add_argument("--seed_epochs", type=int, default=1)
    parser.add_argument("--work_dir", default=None)
    args = parser.parse_args(argv)
    data = args.data[len("folder:"):] if args.data.startswith("folder:") else args.data
    work = args.work_dir or tempfile.mkdtemp(prefix="fmkeras-photos-")
    pretrained = train_recipe("efficientnet_lite0_transfer", data, work)
    recipe = load_recipe("efficientnet_lite0_transfer")
    scratch = train_recipe("efficientnet_lite0_transfer", data, work, **{
        "model.weights": "none", "finetune.freeze_backbone": False, "finetune.epochs": 0,
        "train.epochs": recipe.train.epochs + recipe.finetune.epochs})
    baseline = pixels_logistic_regression(data)
    result = {"benchmark": "transfer_photos", "data": data, "pretrained": pretrained, "scratch": scratch,
              "pixels_logistic_regression": baseline,
              "target": {"accuracy": TARGET_ACCURACY, "train_seconds": TARGET_SECONDS}}
    if args.seed_recipes:
        result["seed_recipes"] = [train_recipe(name, data, work, **{
            "model.weights": "none", "train.epochs": args.seed_epochs, "finetune.epochs": 0,
            "finetune.freeze_backbone": False,
            "train.batch_size": 16}) for name in ("resnet50v2_transfer", "vgg16_transfer")]
    met = (pretrained["accuracy"] >= TARGET_ACCURACY and pretrained["train_seconds"] <= TARGET_SECONDS
           and pretrained["accuracy"] > max(scratch["accuracy"], baseline["accuracy"]))
    result["target_met"] = bool(met)
    print(json.dumps(result, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
