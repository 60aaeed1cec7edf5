"""Multi-label image classification on Fashion-MNIST mosaics: test mAP and micro/macro F1 of the
`multilabel_mosaic` recipe, trained through fmkeras.experiment.Experiment.

Builds the mosaics (fmkeras.data.mosaic: 2x2 tiles of random Fashion-MNIST images, 56x56, 1-4 classes each;
train tiles from the train split, test tiles from the test split, 10% of the training mosaics for validation
and the per-class thresholds) into a temporary directory, trains the recipe on them and prints JSON.
Target: test mAP >= 0.95 (exit status 1 otherwise).

Run: python benchmarks/multilabel.py [--train 20000] [--test 4000] [--seed 0] [--out results.json]
     (make bench-multilabel)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from fmkeras.config import apply_overrides  # noqa: E402
from fmkeras.data.mosaic import build_mosaics  # noqa: E402
from fmkeras.experiment import Experiment  # noqa: E402
from fmkeras.recipes import load_recipe  # noqa: E402

TARGET_MAP = 0.95


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20000, help="training mosaics (10%% of them validation)")
    parser.add_argument("--test", type=int, default=4000, help="test mosaics")
    parser.add_argument("--seed", type=int, default=0, help="mosaic seed")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="recipe overrides")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="fmkeras-bench-multilabel-")
    try:
        start = time.perf_counter()
        csv_path = build_mosaics(os.path.join(work, "mosaics"), args.train, args.test, seed=args.seed)
        build_seconds = time.perf_counter() - start
        overrides = {"data.source": f"multilabel:{csv_path}", "run_root": os.path.join(work, "runs"),
                     "export.base_dir": os.path.join(work, "saved_models"), "train.verbose": 2,
                     **dict(item.split("=", 1) for item in args.set)}
        cfg = apply_overrides(load_recipe("multilabel_mosaic"), overrides)
        start = time.perf_counter()
        report = Experiment(cfg).run()
        run_seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    test = report["test"]
    result = {
        "benchmark": "multilabel_mosaic", "recipe": "multilabel_mosaic", "overrides": args.set,
        "mAP": test["mAP"], "micro_f1": test["micro_f1"], "macro_f1": test["macro_f1"],
        "micro_precision": test["micro_precision"], "micro_recall": test["micro_recall"],
        "subset_accuracy": test["subset_accuracy"], "threshold_source": test["threshold_source"],
        "per_class_ap": {name: v["ap"] for name, v in test["per_class"].items()},
        "thresholds": dict(zip(report["class_names"], test["thresholds"])),
        "fit_seconds": report["train_seconds"], "run_seconds": round(run_seconds, 1),
        "mosaic_build_seconds": round(build_seconds, 1), "epochs": len(report["history"]["loss"]),
        "mosaic_seed": args.seed, "num_train": report["num_train"], "num_val": report["num_val"],
        "num_test": report["num_test"], "image_shape": report["image_shape"], "params": report["params"],
        "labels_per_test_image": test["labels_per_example"],
        "val_auc_pr_per_epoch": [round(v, 4) for v in report["history"].get("val_auc_pr", [])],
        "cpu_count": os.cpu_count(), "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "target_mAP": TARGET_MAP,
    }
    result["reached_target"] = bool(test["mAP"] is not None and test["mAP"] >= TARGET_MAP)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0 if result["reached_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
