"""The 1000 ImageNet-1k class names, shipped as package data (imagenet_classes.txt; its header says where
they come from and under which license).

A preset's classifier top (`include_top=True`) outputs probabilities in this order, so index 309 is
"bee" and 310 is "ant".

Example:
    names = imagenet_class_names()
    names[310]   # -> "ant"
"""
from __future__ import annotations

import functools

import importlib_resources

NAMES_FILE = "imagenet_classes.txt"


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> tuple:
    """The class names in class-index order (comment lines skipped)."""
    text = importlib_resources.files("fmkeras.backbones").joinpath(NAMES_FILE).read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


# Weight-preset name -> its classifier top's class names (presets without a top are not listed).
TOP_CLASS_NAMES = {"imagenet": imagenet_class_names}
