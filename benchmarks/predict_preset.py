"""`preset:efficientnet_lite0` (ImageNet-1k classifier) on the hymenoptera val photos, through fmkeras' predict.

Each photo's own ImageNet class is its folder's: ants/ -> "ant" (index 310), bees/ -> "bee" (309).
Prints JSON: top-1 rate, own-class-in-top-5 rate (files that fail count as misses), per folder too,
for the preset's view (central 0.875 of the shorter side, resized to 224) and, for comparison,
the whole photo squashed to 224x224. Exits 1 if the cropped view's top-5 rate is below 0.90.

Run: python benchmarks/predict_preset.py [--data ../shared/data/hymenoptera]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fmkeras.predict.predictors import find_images, load_predictor, predict_files  # noqa: E402

OWN_CLASS = {"ants": "ant", "bees": "bee"}
TARGET_TOP5 = 0.90


def rates(rows: list, own: list) -> dict:
    top1 = sum(bool(r["top_k"]) and r["top_k"][0]["label"] == c for r, c in zip(rows, own))
    top5 = sum(c in [t["label"] for t in r["top_k"][:5]] for r, c in zip(rows, own))
    return {"images": len(rows), "errors": sum(r["error"] is not None for r in rows),
            "top1_own_class": round(top1 / len(rows), 4), "top5_own_class": round(top5 / len(rows), 4)}


def measure(predictor, val_dir: str) -> dict:
    paths, own = [], []
    for folder, label in OWN_CLASS.items():
        files = find_images([os.path.join(val_dir, folder)])
        paths += files
        own += [label] * len(files)
    start = time.perf_counter()
    rows = predict_files(predictor, paths, top_k=5)
    seconds = time.perf_counter() - start
    result = {**rates(rows, own), "seconds": round(seconds, 1)}
    for folder, label in OWN_CLASS.items():
        pick = [i for i, c in enumerate(own) if c == label]
        result[folder] = rates([rows[i] for i in pick], [label] * len(pick))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "hymenoptera"))
    args = parser.parse_args()
    val_dir = os.path.join(args.data, "val")
    if not os.path.isdir(val_dir):
        sys.exit(f"{val_dir} not found: pass --data=DIR with the hymenoptera photos (train/ and val/ with ants/ "
                 f"and bees/; the public zip is https://download.pytorch.org/tutorial/hymenoptera_data.zip)")
    predictor = load_predictor("preset:efficientnet_lite0")
    report = {"model": predictor.name, "data": val_dir,
              "center_crop_0.875": measure(predictor, val_dir),
              "squashed": measure(dataclasses.replace(predictor, crop=None), val_dir),
              "target_top5_own_class": TARGET_TOP5}
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["center_crop_0.875"]["top5_own_class"] >= TARGET_TOP5 else 1)


if __name__ == "__main__":
    main()
