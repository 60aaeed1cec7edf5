"""Turns flags into a command's validated config: recipe -> --config file -> --set items -> field flags."""
from __future__ import annotations

import dataclasses
import logging

from fmkeras.config import (RunConfig, apply_overrides, deep_merge, from_dict, load_config_file, parse_override,
                            to_dict, validate)
from fmkeras.errors import ConfigError
from fmkeras.recipes import (DEFAULT_RECIPE, FLOAT32_CPU_RECIPE, PHOTO_RECIPE, default_recipe, list_recipes,
                             load_recipe)

log = logging.getLogger("fmkeras")


def resolve_config(recipe: str = None, config_file: str = None, sets=(), fields: dict = None, cls=RunConfig):
    """Builds the config of a command (`cls`: RunConfig for train, TuneRunConfig for tune, ...); later sources
    override earlier ones field by field. Recipes and config files may carry other commands' sections (left
    out); a `--set` of another command's field is refused naming the command."""
    overrides = dict(parse_override(item) for item in sets)
    overrides.update({k: v for k, v in (fields or {}).items() if v is not None})
    file_values = load_config_file(config_file) if config_file else None
    if file_values and "base" in file_values:  # a config file may start from a recipe, as recipes do
        base = file_values.pop("base")
        if not isinstance(base, str) or base not in list_recipes() or (recipe and recipe != base):
            raise ConfigError(f"config file {config_file}: `base` must name a recipe ({', '.join(list_recipes())})"
                              f"{f' and agree with --recipe={recipe}' if recipe else ''}. Received: base={base!r}")
        recipe = base
    if not recipe and not config_file and issubclass(cls, RunConfig):
        recipe = default_recipe(overrides.get("data.source", ""))
        why = {FLOAT32_CPU_RECIPE: f"this machine trains in float32 (no GPU, no native bfloat16), where it is "
                                   f"the faster choice; --recipe={DEFAULT_RECIPE} trains the full-width net",
               PHOTO_RECIPE: "a folder of images starts from ImageNet transfer"}.get(recipe, "the default")
        log.info("no --recipe: starting from %s (%s)", recipe, why)
    if recipe:
        cfg = load_recipe(recipe, cls)
    else:
        cfg = cls()
    if config_file:
        cfg = validate(from_dict(cls, deep_merge(to_dict(cfg), file_values)))
    backbone = overrides.get("model.backbone")
    if (backbone and isinstance(cfg, RunConfig) and backbone != cfg.model.backbone
            and "model.backbone_options" not in overrides):
        # The recipe's options belong to its own backbone (e.g. cnn filters); another backbone starts clean.
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backbone_options={}))
    return apply_overrides(cfg, overrides)
