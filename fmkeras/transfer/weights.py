"""Pretrained-weight resolution in one place: None, a preset name (e.g. "imagenet") or a file.

Presets (BackboneSpec.presets) go through Keras' own cache: the file keras.applications
would download (same name, same `models` folder under $KERAS_HOME or ~/.keras) is used when
present and it matches the preset's published hash (a tampered or corrupt cached file is a
WeightsError, never re-downloaded over); otherwise, if the host answers a quick connection
check, keras.utils.get_file downloads it; offline, a WeightsError says which file to place in
which directory.
Files: `.weights.h5`/`.h5` (load_weights) or a `.keras` model saved by fmkeras (a backbone,
or a classifier whose layer "backbone" is used), inspected by safe_load and loaded with
safe_mode on. A file with a `.sha256` sidecar must match it (weight_hashes).
There is never a silent fallback to random weights.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.parse

import keras

from fmkeras.backbones.registry import BackboneSpec, WeightPreset
from fmkeras.errors import ConfigError, WeightsError
from fmkeras.transfer.package_weights import converted_preset_file
from fmkeras.model_files.safe_load import inspect_model_file, load_keras_model
from fmkeras.model_files.weight_hashes import check_cached_file, verify_sidecar

log = logging.getLogger("fmkeras")
WEIGHT_FILE_SUFFIXES = (".weights.h5", ".h5", ".keras")
CONNECT_TIMEOUT = 3.0  # seconds; a missing network must fail fast, not hang a run


def is_weight_file(weights) -> bool:
    return isinstance(weights, str) and (weights.endswith(WEIGHT_FILE_SUFFIXES) or os.sep in weights)


def keras_cache_dir() -> str:
    """The Keras cache root keras.utils.get_file uses: $KERAS_HOME, else ~/.keras (/tmp/.keras if unwritable)."""
    base = os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))
    if os.path.isdir(base) and not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return base


def preset_file(preset: WeightPreset, include_top: bool = False) -> str:
    """Where Keras caches `preset`'s file (the variant with the classifier top if `include_top`)."""
    name = preset.top_file_name if include_top else preset.file_name
    return os.path.join(keras_cache_dir(), preset.cache_subdir, name)


def network_reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> bool:
    """True if a TCP connection to `url`'s host opens within `timeout` seconds (DNS lookup included)."""
    parts = urllib.parse.urlsplit(url)
    opened = []

    def probe():
        try:
            socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout).close()
            opened.append(True)
        except OSError:
            pass

    # The socket timeout does not bound the DNS lookup, which can hang on a half-configured network.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(opened)


def resolve_preset(spec: BackboneSpec, name: str, include_top: bool = False) -> str:
    """Local path of preset `name` of `spec`: from the Keras cache, downloaded or converted into it, or a
    WeightsError."""
    if name not in spec.presets:
        have = f"presets: {', '.join(sorted(spec.presets))}" if spec.presets else f"{spec.name} has no weight presets"
        raise WeightsError(f"backbone {spec.name!r} cannot load weights={name!r} ({have}); "
                           f"use weights=none or a weight file (.weights.h5/.h5/.keras)")
    preset = spec.presets[name]
    if include_top and not preset.top_file_name:
        raise WeightsError(f"backbone {spec.name!r} preset {name!r} has no classifier top; use include_top=false")
    path = preset_file(preset, include_top)
    if preset.package:
        return converted_preset_file(spec, preset, path, include_top)
    if os.path.isfile(path):
        check_cached_file(path, preset.file_hash)  # WeightsError: tampered or corrupt, not re-downloaded
        return path
    hint = (f"place {preset.file_name} in {os.path.dirname(path)} (download it from {preset.origin}), "
            f"or pass weights=PATH")
    if not network_reachable(preset.origin):
        raise WeightsError(f"{spec.name} {name} weights are not in the Keras cache and "
                           f"{urllib.parse.urlsplit(preset.origin).hostname} is unreachable: {hint}")
    try:
        return keras.utils.get_file(preset.file_name, preset.origin, cache_subdir=preset.cache_subdir,
                                    cache_dir=keras_cache_dir(), file_hash=preset.file_hash)
    except Exception as err:  # urllib/hash errors; get_file re-raises them as bare Exception
        raise WeightsError(f"downloading {spec.name} {name} weights failed ({str(err)[:200]}): {hint}") from None


def load_weight_file(model: keras.Model, path: str) -> keras.Model:
    """Loads `path` into `model` in place; raises WeightsError naming the file on any mismatch."""
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    verify_sidecar(path)
    inspect_model_file(path)  # refuses hostile files (UnsafeModelError) before Keras parses them
    try:
        if path.endswith(".keras"):
            saved = load_keras_model(path, compile=False)
            source = _backbone_of(saved)
            if len(source.weights) != len(model.weights):
                raise ValueError(f"it holds {len(source.weights)} weight tensors, the backbone has "
                                 f"{len(model.weights)}")
            model.set_weights(source.get_weights())
        else:
            model.load_weights(path)
    except (ValueError, OSError, KeyError) as err:
        raise WeightsError(f"weights in {path} do not fit backbone {model.name!r}: "
                           f"{str(err).splitlines()[0][:300]}") from None
    return model


def _backbone_of(saved: keras.Model) -> keras.Model:
    # A classifier saved by fmkeras (run_dir/model.keras) carries its backbone as the layer "backbone".
    names = [layer.name for layer in saved.layers]
    return saved.get_layer("backbone") if "backbone" in names else saved


def _build(spec: BackboneSpec, input_shape: tuple, options: dict) -> keras.Model:
    try:
        return spec.builder(input_shape, weights=None, **options)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise ConfigError(f"backbone {spec.name!r} does not take `model.backbone_options` "
                          f"{str(err).split('argument')[-1].strip()}. Received: model.backbone_options={options!r}"
                          ) from None
    except ConfigError:
        raise
    except ValueError as err:  # a bad option value (e.g. cnn's batch_norm), named by the builder
        raise ConfigError(f"backbone {spec.name!r}, `model.backbone_options`: {err}") from None


def build_backbone(spec: BackboneSpec, input_shape: tuple, weights=None, options: dict = None) -> keras.Model:
    """Builds `spec` at `input_shape` with `weights` (None/"none", a preset name, or a weight file)."""
    options = dict(options or {})
    if weights is None or weights == "none":
        return _build(spec, input_shape, options)
    path = weights if is_weight_file(weights) else resolve_preset(spec, weights, bool(options.get("include_top")))
    model = load_weight_file(_build(spec, input_shape, options), path)
    log.info("backbone %s: loaded weights from %s", spec.name, path)
    return model
