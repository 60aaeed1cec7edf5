"""A folder of images with one sub-folder per class (decoded later by TF ops, not PIL).

Layouts: DIR/<class>/*.jpg, or DIR/train/<class>/* with an optional DIR/test/<class>/*
(DIR/validation is accepted as the test split when there is no DIR/test).
"""
from __future__ import annotations

import os

import numpy as np

from fmkeras.data.source import Source
from fmkeras.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def _list_split(directory: str, skipped: list) -> tuple:
    """Returns (class_names, paths, labels) of one split directory."""
    classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(f"image folder {directory} has no class sub-folders (expected {directory}/<class>/*.jpg)")
    paths, labels = [], []
    for index, name in enumerate(classes):
        for entry in sorted(os.scandir(os.path.join(directory, name)), key=lambda e: e.name):
            if not entry.is_file():
                continue
            if entry.name.startswith("."):
                skipped.append((entry.path, "hidden file"))
            elif not entry.name.lower().endswith(IMAGE_EXTENSIONS):
                skipped.append((entry.path, "not an image extension"))
            elif entry.stat().st_size == 0:
                skipped.append((entry.path, "empty file"))
            else:
                paths.append(entry.path)
                labels.append(index)
    return tuple(classes), np.asarray(paths, dtype=object), np.asarray(labels, np.int64)


def image_folder_source(directory: str, channels: int = 3) -> Source:
    """Lists an image folder's files and labels; images are decoded in the tf.data pipeline."""
    if not os.path.isdir(directory):
        raise DataError(f"image folder not found: {directory}")
    skipped: list = []
    train_dir = os.path.join(directory, "train")
    test_dir = next((os.path.join(directory, d) for d in ("test", "validation")
                     if os.path.isdir(os.path.join(directory, d))), None)
    if not os.path.isdir(train_dir):
        train_dir, test_dir = directory, None
    classes, x_train, y_train = _list_split(train_dir, skipped)
    x_test = y_test = None
    if test_dir:
        test_classes, x_test, y_test = _list_split(test_dir, skipped)
        if test_classes != classes:
            raise DataError(f"class folders differ between {train_dir} ({', '.join(classes)}) and "
                            f"{test_dir} ({', '.join(test_classes)})")
    if len(x_train) == 0:
        raise DataError(f"image folder {train_dir} has class folders but no image files")
    return Source(name=f"folder:{directory}", kind="files", class_names=classes, x_train=x_train,
                  y_train=y_train, x_test=x_test, y_test=y_test, channels=channels, skipped=tuple(skipped))
