"""A folder of images with one sub-folder per class (decoded later by TF ops, not PIL).

Layouts: DIR/<class>/*.jpg, or DIR/train/<class>/* with an optional DIR/test/<class>/*
(DIR/validation or DIR/val is the test split when there is no DIR/test, and the validation
split when both exist). Every split must have the same class folders.

Hidden files, other extensions and empty files are skipped by name; every remaining file is
decoded once up front (file_check.py), so truncated or fake images are skipped and listed
in `Source.skipped` (and the run report) rather than failing mid-epoch. A file whose header
declares more than `max_pixels` pixels (a decompression bomb) is refused unread, even with
`check_files=False`.

A file or class folder that is a symlink pointing outside DIR is refused (listed in `skipped`)
unless `follow_symlinks`. Files are judged by content, not extension: the header check and the
decoder both sniff the format (a WebP named .png is a WebP, and a WebP bomb is refused as one).

`bad_files="strict"` turns those skips into one DataError, raised before training starts,
that names every unreadable image file (empty, truncated, corrupt, not an image, too large).
Files ignored by name (hidden files, other extensions) are never errors. Convertible files
(CMYK JPEG, grayscale/16-bit/alpha PNG, animated GIF: first frame) are valid in both modes.
"""
from __future__ import annotations

import os

import numpy as np

from fmkeras.data.file_check import DEFAULT_MAX_PIXELS, check_image_files, oversized
from fmkeras.data.source import Source
from fmkeras.errors import DataError

# The ants-vs-bees photos of the classic transfer-learning tutorial, used by the photo recipe and benchmarks.
HYMENOPTERA_ZIP = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
BAD_FILE_MODES = ("skip", "strict")
_NOT_IMAGES = ("hidden file", "not an image extension")  # skipped by name: never an error


def _outside(path: str, root: str) -> bool:
    """True when `path` resolves (symlinks followed) to somewhere outside `root` (a realpath)."""
    return os.path.commonpath([os.path.realpath(path), root]) != root


def _list_split(directory: str, skipped: list, root: str = None, follow_symlinks: bool = True) -> tuple:
    """Returns (class_names, paths, labels) of one split directory; symlinks leaving `root` are skipped
    unless `follow_symlinks`."""
    escapes = "symlink to outside the image folder (set data.follow_symlinks=true to follow it)"
    classes = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        if not follow_symlinks and entry.is_symlink() and _outside(entry.path, root):
            skipped.append((entry.path, escapes))
        else:
            classes.append(entry.name)
    if not classes:
        raise DataError(f"image folder {directory} has no class sub-folders (expected {directory}/<class>/*.jpg)")
    paths, labels = [], []
    for index, name in enumerate(classes):
        for entry in sorted(os.scandir(os.path.join(directory, name)), key=lambda e: e.name):
            if not entry.is_file():
                continue
            if not follow_symlinks and entry.is_symlink() and _outside(entry.path, root):
                skipped.append((entry.path, escapes))
            elif entry.name.startswith("."):
                skipped.append((entry.path, "hidden file"))
            elif not entry.name.lower().endswith(IMAGE_EXTENSIONS):
                skipped.append((entry.path, "not an image extension"))
            elif entry.stat().st_size == 0:
                skipped.append((entry.path, "empty file"))
            else:
                paths.append(entry.path)
                labels.append(index)
    paths, labels = np.asarray(paths, dtype=object), np.asarray(labels, np.int64)
    return tuple(classes), paths, labels


def _split_dirs(directory: str) -> dict:
    """{"train": dir, "val": dir or None, "test": dir or None} for the supported layouts."""
    train_dir = os.path.join(directory, "train")
    if not os.path.isdir(train_dir):
        return {"train": directory, "val": None, "test": None}
    found = {d: os.path.join(directory, d) for d in ("test", "validation", "val")
             if os.path.isdir(os.path.join(directory, d))}
    validation = found.get("validation") or found.get("val")
    if "test" in found:
        return {"train": train_dir, "val": validation, "test": found["test"]}
    return {"train": train_dir, "val": None, "test": validation}


def _check_same_classes(dirs: dict, listed: dict):
    train_classes = listed["train"][0]
    for split in ("val", "test"):
        if split in listed and listed[split][0] != train_classes:
            raise DataError(f"class folders differ between {dirs['train']} ({', '.join(train_classes)}) and "
                            f"{dirs[split]} ({', '.join(listed[split][0])})")


def _refuse_bad_files(directory: str, skipped: list):
    """bad_files=strict: one error naming every unreadable image file, or nothing."""
    bad = [(path, reason) for path, reason in skipped if reason not in _NOT_IMAGES]
    if bad:
        listing = "; ".join(f"{path} ({reason})" for path, reason in bad)
        raise DataError(f"image folder {directory} has {len(bad)} unreadable image file(s) and data.bad_files=strict "
                        f"(set data.bad_files=skip to train without them): {listing}")


def image_folder_source(directory: str, channels: int = 3, check_files: bool = True, bad_files: str = "skip",
                        max_pixels: int = DEFAULT_MAX_PIXELS, follow_symlinks: bool = False) -> Source:
    """Lists an image folder's files and labels, decoding each once to skip bad files (`check_files`).

    bad_files: "skip" leaves unreadable files out and lists them in `Source.skipped`; "strict"
        raises one DataError naming all of them instead.
    max_pixels: files whose header declares more pixels are refused without decoding.
    follow_symlinks: also read files (and class folders) that are symlinks to outside `directory`.
    """
    if bad_files not in BAD_FILE_MODES:
        raise DataError(f"bad_files must be one of {', '.join(BAD_FILE_MODES)}. Received: bad_files={bad_files!r}")
    if bad_files == "strict" and not check_files:
        raise DataError("bad_files=strict needs check_files=True (only the up-front check finds unreadable files)")
    if not os.path.isdir(directory):
        hint = f" (get it from {HYMENOPTERA_ZIP} and unzip it)" if os.path.basename(
            os.path.normpath(directory)).startswith("hymenoptera") else ""
        raise DataError(f"image folder not found: {directory}{hint}")
    skipped: list = []
    dirs = _split_dirs(directory)
    root = os.path.realpath(directory)
    for split, path in dirs.items():
        if path and path != directory and not follow_symlinks and _outside(path, root):
            raise DataError(f"image folder split {path} is a symlink to outside {directory}; set "
                            f"data.follow_symlinks=true to follow it")
    listed = {split: _list_split(path, skipped, root, follow_symlinks) for split, path in dirs.items() if path}
    _check_same_classes(dirs, listed)
    all_paths = np.concatenate([paths for _, paths, _ in listed.values()])
    if check_files:
        good, bad = check_image_files(all_paths, max_pixels)
    else:  # no decoding up front, but a bomb is still refused from its header (cheap, never decoded)
        reasons = [oversized(str(path), max_pixels) for path in all_paths]
        good = np.asarray([reason is None for reason in reasons], bool)
        bad = [(str(path), reason) for path, reason in zip(all_paths, reasons) if reason]
    skipped.extend(bad)
    start = 0
    for split, (classes, paths, labels) in list(listed.items()):
        keep = good[start:start + len(paths)]
        start += len(paths)
        listed[split] = (classes, paths[keep], labels[keep])
    if bad_files == "strict":
        _refuse_bad_files(directory, skipped)
    classes, x_train, y_train = listed["train"]
    if len(x_train) == 0:
        raise DataError(f"image folder {dirs['train']} has class folders but no readable image files")
    x_val, y_val = listed["val"][1:] if "val" in listed else (None, None)
    x_test, y_test = listed["test"][1:] if "test" in listed else (None, None)
    return Source(name=f"folder:{directory}", kind="files", class_names=classes, x_train=x_train,
                  y_train=y_train, x_test=x_test, y_test=y_test, x_val=x_val, y_val=y_val,
                  channels=channels, skipped=tuple(skipped))
