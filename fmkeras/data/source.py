"""The `Source` record every data source returns, and class filtering shared by all of them."""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from fmkeras.errors import DataError


@dataclasses.dataclass(frozen=True)
class Source:
    """Examples of one dataset, before any splitting, resizing or batching.

    x_train/x_val/x_test hold uint8 images (N, H, W, C) when `kind == "arrays"`, file paths (N,)
    when `kind == "files"`, or encoded PNG/JPEG bytes (N,) when `kind == "encoded"`; y holds
    integer labels indexing `class_names` (N,), or for multi-label sources a multi-hot float32 matrix (N, K). x_val is set
    only when the source has its own validation split (then no split is cut from x_train).
    `skipped` lists (path, reason) for inputs that were left out, so runs can report them.
    `fixed_shape` is (H, W, C) for encoded images known to share one size.
    """
    name: str
    kind: str
    class_names: tuple
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray] = None
    y_test: Optional[np.ndarray] = None
    channels: int = 3
    skipped: tuple = ()
    x_val: Optional[np.ndarray] = None
    y_val: Optional[np.ndarray] = None
    fixed_shape: Optional[tuple] = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> Optional[tuple]:
        """(H, W, C) for array sources (and encoded ones of one known size), None when sizes may differ."""
        return tuple(self.x_train.shape[1:]) if self.kind == "arrays" else self.fixed_shape


def _class_indices(class_names: Sequence[str], wanted: Sequence) -> list:
    indices = []
    for item in wanted:
        if isinstance(item, str) and item in class_names:
            indices.append(list(class_names).index(item))
        elif isinstance(item, int) and 0 <= item < len(class_names):
            indices.append(item)
        else:
            raise DataError(f"`data.classes` names class {item!r}, which is not in the source; "
                            f"classes are 0..{len(class_names) - 1}: {', '.join(class_names)}")
    return indices


def select_classes(source: Source, wanted: Optional[Sequence]) -> Source:
    """Keeps only the wanted classes (names or indices), relabelled 0..k-1 in the order given."""
    if not wanted:
        return source
    keep = _class_indices(source.class_names, wanted)
    remap = np.full(len(source.class_names), -1, np.int64)
    remap[keep] = np.arange(len(keep))

    def pick(x, y):
        if x is None:
            return None, None
        mask = remap[y] >= 0
        return x[mask], remap[y[mask]]

    x_train, y_train = pick(source.x_train, source.y_train)
    x_test, y_test = pick(source.x_test, source.y_test)
    x_val, y_val = pick(source.x_val, source.y_val)
    return dataclasses.replace(source, class_names=tuple(source.class_names[i] for i in keep),
                               x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                               x_val=x_val, y_val=y_val)
