"""Pretrained-weight resolution in one place: None, a preset name (e.g. "imagenet") or a file.

Files: `.weights.h5`/`.h5` (load_weights) or a `.keras` backbone saved by fmkeras
(inspected by safe_load, loaded with safe_mode on, its weights copied layer by layer). A file
with a `.sha256` sidecar must match it; preset files in the Keras cache must match the hash
Keras knows for them (weight_hashes). A missing file is an error that says what to place
where; there is never a silent fallback to random weights.
"""
from __future__ import annotations

import os

import keras

from fmkeras.backbones.registry import BackboneSpec
from fmkeras.errors import WeightsError
from fmkeras.transfer.safe_load import inspect_model_file, load_keras_model
from fmkeras.transfer.weight_hashes import guard_keras_cache, verify_sidecar

WEIGHT_FILE_SUFFIXES = (".weights.h5", ".h5", ".keras")


def is_weight_file(weights) -> bool:
    return isinstance(weights, str) and (weights.endswith(WEIGHT_FILE_SUFFIXES) or os.sep in weights)


def load_weight_file(model: keras.Model, path: str) -> keras.Model:
    """Loads `path` into `model` in place; raises WeightsError naming the file on any mismatch."""
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    verify_sidecar(path)
    inspect_model_file(path)  # refuses hostile files (UnsafeModelError) before Keras parses them
    try:
        if path.endswith(".keras"):
            saved = load_keras_model(path, compile=False)
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
        with guard_keras_cache():
            return spec.builder(input_shape, weights=weights, **options)
    except WeightsError:
        raise
    except ValueError as err:
        raise WeightsError(f"backbone {spec.name!r} cannot load weights={weights!r}: "
                           f"{str(err).splitlines()[0][:300]}") from None
