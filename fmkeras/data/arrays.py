"""In-memory arrays and `.npz` files as a data source.

An .npz holds `x_train`, `y_train` and optionally `x_test`, `y_test`, `class_names`.
"""
from __future__ import annotations

import os

import numpy as np

from fmkeras.data.source import Source
from fmkeras.errors import DataError


def _as_images(x: np.ndarray, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{where}: images must have shape (N, H, W[, 1 or 3]). Received: {x.shape}")
    if x.dtype != np.uint8:
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"{where}: pixel values must lie in [0, 255]. Received range "
                            f"[{x.min()}, {x.max()}]")
        x = np.rint(x).astype(np.uint8) if x.max() > 1.0 else np.rint(x * 255).astype(np.uint8)
    return x


def array_source(x_train, y_train, x_test=None, y_test=None, class_names=None, name="arrays") -> Source:
    """Wraps numpy arrays (uint8 0..255, or floats in [0, 1] or [0, 255]) as a Source."""
    x_train = _as_images(x_train, f"{name} x_train")
    y_train = np.asarray(y_train).astype(np.int64).reshape(-1)
    if len(x_train) != len(y_train):
        raise DataError(f"{name}: x_train has {len(x_train)} images but y_train has {len(y_train)} labels")
    if x_test is not None:
        x_test = _as_images(x_test, f"{name} x_test")
        y_test = np.asarray(y_test).astype(np.int64).reshape(-1)
        if len(x_test) != len(y_test):
            raise DataError(f"{name}: x_test has {len(x_test)} images but y_test has {len(y_test)} labels")
    num = int(max(y_train.max(), -1 if y_test is None else y_test.max())) + 1
    class_names = tuple(str(c) for c in class_names) if class_names is not None else tuple(
        str(i) for i in range(num))
    if len(class_names) < num:
        raise DataError(f"{name}: labels go up to {num - 1} but only {len(class_names)} class names are given")
    return Source(name=name, kind="arrays", class_names=class_names, x_train=x_train, y_train=y_train,
                  x_test=x_test, y_test=y_test, channels=int(x_train.shape[-1]))


def npz_source(path: str) -> Source:
    """Loads an .npz with x_train/y_train[/x_test/y_test/class_names]."""
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {path} as .npz: {err}") from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise DataError(f"{path} lacks array(s) {', '.join(missing)}; found: {', '.join(sorted(arrays))}")
    return array_source(arrays["x_train"], arrays["y_train"], arrays.get("x_test"), arrays.get("y_test"),
                        arrays.get("class_names"), name=f"npz:{path}")
