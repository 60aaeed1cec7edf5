"""Turns flags into a command's validated config: recipe -> --config file -> --set items -> field flags."""
from __future__ import annotations

import dataclasses

from fmkeras.config import (RunConfig, apply_overrides, from_dict, load_config_file, parse_override, to_dict,
                            validate)
from fmkeras.recipes import load_recipe


def _deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


DEFAULT_RECIPE = "cnn_fashion"
PHOTO_RECIPE = "efficientnet_lite0_transfer"  # the default for a folder of images: transfer from ImageNet


def default_recipe(overrides: dict) -> str:
    """The recipe a run without --recipe/--config starts from: the photo recipe for `folder:` data."""
    return PHOTO_RECIPE if str(overrides.get("data.source", "")).startswith("folder:") else DEFAULT_RECIPE


def resolve_config(recipe: str = None, config_file: str = None, sets=(), fields: dict = None, cls=RunConfig):
    """Builds the config of a command (`cls`: RunConfig for train, TuneRunConfig for tune, ...); later sources
    override earlier ones field by field. Recipes and config files may carry other commands' sections (left
    out); a `--set` of another command's field is refused naming the command."""
    overrides = dict(parse_override(item) for item in sets)
    overrides.update({k: v for k, v in (fields or {}).items() if v is not None})
    if recipe or (not config_file and issubclass(cls, RunConfig)):
        cfg = load_recipe(recipe or default_recipe(overrides), cls)
    else:
        cfg = cls()
    if config_file:
        cfg = validate(from_dict(cls, _deep_merge(to_dict(cfg), load_config_file(config_file))))
    backbone = overrides.get("model.backbone")
    if (backbone and isinstance(cfg, RunConfig) and backbone != cfg.model.backbone
            and "model.backbone_options" not in overrides):
        # The recipe's options belong to its own backbone (e.g. cnn filters); another backbone starts clean.
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backbone_options={}))
    return apply_overrides(cfg, overrides)
