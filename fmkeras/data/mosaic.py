"""A real multi-label image set: 2x2 mosaics of Fashion-MNIST tiles, labelled with the classes present.

Each mosaic is a 56x56 grayscale PNG of four tiles, each a random Fashion-MNIST image (train tiles from
the train split, test tiles from the test split), so a mosaic holds 1-4 distinct classes. `labels.csv`
(the `multilabel:` source format, fmkeras.data.multilabel_csv) lists `path,labels,split` with the labels
separated by `;` and a validation part carved from the training mosaics. The same seed writes the same files.

Run:
    python -m fmkeras.data.mosaic --out data/mosaics --train 20000 --test 4000 --seed 0   # or: make mosaics
Then train on it with `fmkeras train --recipe=multilabel_mosaic --data.source=multilabel:data/mosaics/labels.csv`.
"""
from __future__ import annotations

import argparse
import csv
import json
import os

import numpy as np
from PIL import Image

from fmkeras.data.idx import fashion_mnist_source
from fmkeras.errors import DataError

LABELS_FILE = "labels.csv"
LABEL_SEPARATOR = ";"
GRID = 2


def mosaic_tiles(count: int, pool_size: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 4) indices of the tiles of each mosaic, drawn uniformly (with replacement) from the pool."""
    return rng.integers(0, pool_size, size=(count, GRID * GRID))


def tile_mosaics(images: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """(N, 2H, 2W, C) mosaics of `images` (M, H, W, C), tile k of a row going to row k // 2, column k % 2."""
    picked = images[tiles]  # (N, 4, H, W, C)
    n, _, h, w, c = picked.shape
    rows = picked.reshape(n, GRID, GRID, h, w, c).transpose(0, 1, 3, 2, 4, 5)
    return rows.reshape(n, GRID * h, GRID * w, c)


def mosaic_labels(labels: np.ndarray, tiles: np.ndarray, class_names) -> list:
    """The sorted class names present in each mosaic."""
    return [sorted({class_names[i] for i in labels[row]}) for row in tiles]


def build_mosaics(out_dir: str, num_train: int, num_test: int, seed: int = 0, val_fraction: float = 0.1,
                  source=None) -> str:
    """Writes `num_train` training mosaics (a `val_fraction` of them marked `val`) and `num_test` test mosaics
    as PNGs under `out_dir`, and `out_dir/labels.csv`; returns the CSV's path.

    source: a Fashion-MNIST-like array Source (default: fashion_mnist, Debian's package or the download).
    """
    if num_train < 1 or num_test < 0 or not 0.0 <= val_fraction < 1.0:
        raise DataError(f"mosaics need --train >= 1, --test >= 0 and 0 <= val_fraction < 1. Received: "
                        f"train={num_train}, test={num_test}, val_fraction={val_fraction}")
    source = source or fashion_mnist_source()
    rng = np.random.default_rng(seed)
    rows = []
    num_val = int(round(num_train * val_fraction))
    for split, images, labels, count in (("train", source.x_train, source.y_train, num_train),
                                         ("test", source.x_test, source.y_test, num_test)):
        tiles = mosaic_tiles(count, len(images), rng)
        mosaics = tile_mosaics(images, tiles)
        names = mosaic_labels(labels, tiles, source.class_names)
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
        for i, (mosaic, present) in enumerate(zip(mosaics, names)):
            path = f"{split}/{i:06d}.png"
            Image.fromarray(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic).save(os.path.join(out_dir, path))
            # The first training mosaics are the validation part (the tiles are random, so any cut is random).
            rows.append((path, LABEL_SEPARATOR.join(present), "val" if split == "train" and i < num_val else split))
    csv_path = os.path.join(out_dir, LABELS_FILE)
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "labels", "split"])
        writer.writerows(rows)
    return csv_path


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write the PNGs and labels.csv into")
    parser.add_argument("--train", type=int, default=20000, help="training mosaics (validation included)")
    parser.add_argument("--test", type=int, default=4000, help="test mosaics")
    parser.add_argument("--val_fraction", type=float, default=0.1, help="fraction of the training mosaics "
                                                                        "marked split=val")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_mosaics(args.out, args.train, args.test, args.seed, args.val_fraction)
    summary = {"labels_csv": path, "train": args.train, "test": args.test, "seed": args.seed,
               "source": f"multilabel:{path}"}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
