"""Pretrained-weight resolution in one place: None, a preset name (e.g. "imagenet") or a file.

Files: `.weights.h5`/`.h5` (load_weights) or a `.keras` backbone saved by fmkeras
(loaded with safe_mode on, its weights copied layer by layer). A missing file is an error
that says what to place where; there is never a silent fallback to random weights.
"""
from __future__ import annotations

import os

import keras

from fmkeras.backbones.registry import BackboneSpec
from fmkeras.errors import WeightsError

WEIGHT_FILE_SUFFIXES = (".weights.h5", ".h5", ".keras")


def is_weight_file(weights) -> bool:
    return isinstance(weights, str) and (weights.endswith(WEIGHT_FILE_SUFFIXES) or os.sep in weights)


def load_weight_file(model: keras.Model, path: str) -> keras.Model:
    """Loads `path` into `model` in place; raises WeightsError naming the file on any mismatch."""
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    try:
        if path.endswith(".keras"):
            saved = keras.saving.load_model(path, compile=False, safe_mode=True)
            model.set_weights(saved.get_weights())
        else:
            model.load_weights(path)
    except (ValueError, OSError, KeyError) as err:
        raise WeightsError(f"weights in {path} do not fit backbone {model.name!r}: "
                           f"{str(err).splitlines()[0][:300]}") from None
    return model


def build_backbone(spec: BackboneSpec, input_shape: tuple, weights=None, options: dict = None) -> keras.Model:
    """Builds `spec` at `input_shape` with `weights` (None, a preset name, or a weight file)."""
    options = dict(options or {})
    if weights is None or weights == "none":
        return spec.builder(input_shape, weights=None, **options)
    if is_weight_file(weights):
        return load_weight_file(spec.builder(input_shape, weights=None, **options), weights)
    try:
        return spec.builder(input_shape, weights=weights, **options)
    except ValueError as err:
        raise WeightsError(f"backbone {spec.name!r} cannot load weights={weights!r}: "
                           f"{str(err).splitlines()[0][:300]}") from None
