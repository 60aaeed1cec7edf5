"""A pretrained backbone on disk: `NAME.keras` (the backbone model) + `NAME.json` (how to feed it).

The `.keras` file is what `fmkeras train --weights=NAME.keras` (model.weights) loads into a
classifier of the same backbone config. The JSON sidecar records the backbone name, options
and input shape, the preprocessing the backbone was trained behind, how it was pretrained,
and the exact `fmkeras train` flags that rebuild a matching classifier.
"""
from __future__ import annotations

import json
import os

import keras

from fmkeras.backbones import get_backbone
from fmkeras.config import ModelConfig
from fmkeras.errors import ConfigError, WeightsError


def sidecar_path(path: str) -> str:
    return path[: -len(".keras")] + ".json"


def backbone_info(cfg: ModelConfig, backbone: keras.Model, method: str, **extra) -> dict:
    """JSON-ready description of a pretrained backbone and how to use it."""
    spec = get_backbone(cfg.backbone)
    options = json.dumps(cfg.backbone_options, separators=(",", ":"))
    return {
        "backbone": cfg.backbone, "backbone_options": cfg.backbone_options,
        "input_shape": list(backbone.input_shape[1:]), "output_shape": list(backbone.output_shape[1:]),
        "preprocessing": f"{spec.preprocess.__module__}.{spec.preprocess.__name__} on float32 pixels in [0, 255]",
        "params": backbone.count_params(), "method": method,
        "use_with": f"fmkeras train --backbone={cfg.backbone} --set='model.backbone_options={options}' "
                    f"--weights=PATH",
        **extra,
    }


def save_backbone(backbone: keras.Model, path: str, info: dict) -> str:
    """Writes `backbone` to `path` (.keras) and `info` beside it; returns `path`."""
    if not path.endswith(".keras"):
        raise ConfigError(f"a pretrained backbone is saved as a .keras file. Received: {path!r}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    backbone.save(path)
    info = {**info, "use_with": info.get("use_with", "").replace("PATH", path)}
    with open(sidecar_path(path), "w") as fh:
        json.dump(info, fh, indent=2, sort_keys=True)
    return path


def read_backbone_info(path: str) -> dict:
    """The sidecar of a saved backbone; WeightsError naming the file when it is missing."""
    side = sidecar_path(path)
    if not os.path.isfile(side):
        raise WeightsError(f"{path} has no {os.path.basename(side)} beside it (written by `fmkeras pretrain`)")
    with open(side) as fh:
        return json.load(fh)
