"""Multi-label images listed in a CSV: `data.source=multilabel:FILE.csv`.

Columns (header row): `path` (relative to the CSV's folder, or absolute), `labels` (class names separated by
`;`, at least one), optional `split` (train | val | test; empty = train). The class names are the sorted union
of the labels, or `data.classes` (then only those columns, in that order; other labels are dropped and
logged). Labels become a multi-hot float32 matrix (N, K) in `y_train` / `y_val` / `y_test`.

Example CSV:
    path,labels,split
    train/000000.png,Bag;Sneaker,train
    train/000001.png,Trouser,val
"""
from __future__ import annotations

import csv
import logging
import os

import numpy as np

from fmkeras.config import MULTILABEL_SOURCE_PREFIX, DataConfig
from fmkeras.data.file_check import check_image_files, oversized
from fmkeras.data.image_header import declared_size
from fmkeras.data.source import Source, _class_indices
from fmkeras.errors import DataError

MULTILABEL_PREFIX = MULTILABEL_SOURCE_PREFIX
LABEL_SEPARATOR = ";"
SPLITS = ("train", "val", "test")
log = logging.getLogger("fmkeras")


def _read_rows(csv_path: str) -> list:
    """[(line number, path, [labels], split)] of the CSV; DataError naming the file, line and value."""
    if not os.path.isfile(csv_path):
        raise DataError(f"multi-label CSV not found: {csv_path}")
    root = os.path.dirname(os.path.abspath(csv_path))
    rows = []
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("path", "labels") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{csv_path}: the header must name the columns path and labels (optional split); "
                            f"missing {', '.join(missing)}. Received header: {reader.fieldnames}")
        for row in reader:
            line = reader.line_num
            where = f"{csv_path}, line {line}"
            relative = (row.get("path") or "").strip()
            path = os.path.join(root, relative)
            if not relative or not os.path.isfile(path):
                raise DataError(f"{where}: image file not found: {relative!r} (paths are relative to {root})")
            labels = [label.strip() for label in (row.get("labels") or "").split(LABEL_SEPARATOR) if label.strip()]
            if not labels:
                raise DataError(f"{where}: empty labels for {relative!r}; list at least one class, "
                                f"separated by '{LABEL_SEPARATOR}'. Received: labels={row.get('labels')!r}")
            split = (row.get("split") or "train").strip()
            if split not in SPLITS:
                raise DataError(f"{where}: unknown split {split!r} for {relative!r}; use one of "
                                f"{', '.join(SPLITS)} (empty = train)")
            rows.append((line, path, labels, split))
    if not rows:
        raise DataError(f"{csv_path}: no images listed")
    return rows


def is_multilabel_source(spec: str) -> bool:
    """True for `data.source` values that select the multi-label task."""
    return spec.startswith(MULTILABEL_PREFIX)


def multi_hot(label_lists, class_names) -> np.ndarray:
    """(N, K) float32 with 1 where example n has class k; labels outside `class_names` are ignored."""
    index = {name: i for i, name in enumerate(class_names)}
    matrix = np.zeros((len(label_lists), len(class_names)), np.float32)
    for n, labels in enumerate(label_lists):
        for label in labels:
            if label in index:
                matrix[n, index[label]] = 1.0
    return matrix


def _fixed_shape(paths, channels: int):
    """(H, W, channels) when every file's header declares the same size, else None (sizes differ)."""
    sizes = {declared_size(str(p)) for p in paths}
    if len(sizes) != 1 or None in sizes:
        return None
    width, height = sizes.pop()
    return (height, width, channels)


def _check_files(paths, cfg: DataConfig) -> tuple:
    """(mask of files to keep, [(path, reason)] skipped) under `data.check_files` / `data.bad_files`."""
    if cfg.check_files:
        good, bad = check_image_files(paths, cfg.max_image_pixels)
    else:
        reasons = [oversized(str(p), cfg.max_image_pixels) for p in paths]
        good = np.asarray([r is None for r in reasons], bool)
        bad = [(str(p), r) for p, r in zip(paths, reasons) if r]
    if bad and cfg.bad_files == "strict":
        listing = "; ".join(f"{p} ({r})" for p, r in bad)
        raise DataError(f"{len(bad)} unreadable image file(s) and data.bad_files=strict: {listing}")
    return good, bad


def multilabel_csv_source(csv_path: str, cfg: DataConfig = DataConfig()) -> Source:
    """Reads `csv_path` (see the module docstring) into a Source of image files with multi-hot labels."""
    rows = _read_rows(csv_path)
    present = sorted({label for _, _, labels, _ in rows for label in labels})
    class_names = tuple(present)
    if cfg.classes:
        class_names = tuple(present[i] for i in _class_indices(present, cfg.classes))
        dropped = sum(label not in class_names for _, _, labels, _ in rows for label in labels)
        log.info("%s: data.classes keeps %d of %d classes; %d labels of other classes dropped", csv_path,
                 len(class_names), len(present), dropped)
    paths = np.asarray([path for _, path, _, _ in rows], dtype=object)
    splits = np.asarray([split for _, _, _, split in rows])
    labels = multi_hot([labels for _, _, labels, _ in rows], class_names)
    good, skipped = _check_files(paths, cfg)
    channels = cfg.channels or 3

    def part(name):
        keep = good & (splits == name)
        return (paths[keep], labels[keep]) if keep.any() else (None, None)

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (part(name) for name in SPLITS)
    if x_train is None:
        raise DataError(f"{csv_path}: no readable training images (split train or empty)")
    return Source(name=f"{MULTILABEL_PREFIX}{csv_path}", kind="files", class_names=class_names, x_train=x_train,
                  y_train=y_train, x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test, channels=channels,
                  skipped=tuple(skipped), fixed_shape=_fixed_shape(paths[good], channels))
