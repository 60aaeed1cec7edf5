"""Recipes: named configs (YAML files beside this module) mirroring the reference examples.

Example:
    cfg = load_recipe("cnn_fashion")
"""
from __future__ import annotations

import os

from fmkeras.config import from_dict, load_config_file, run_config_class, validate
from fmkeras.errors import ConfigError

RECIPE_DIR = os.path.dirname(os.path.abspath(__file__))


def list_recipes() -> list:
    """Names of the built-in recipes, sorted."""
    return sorted(f[: -len(".yaml")] for f in os.listdir(RECIPE_DIR) if f.endswith(".yaml"))


def recipe_path(name: str) -> str:
    path = os.path.join(RECIPE_DIR, f"{name}.yaml")
    if not os.path.isfile(path):
        raise ConfigError(f"unknown recipe {name!r}; available recipes: {', '.join(list_recipes())}")
    return path


def load_recipe(name: str, cls=None):
    """The validated config of recipe `name` (its `name` field defaults to the recipe's).

    Recipes are shared by the commands: `cls` (RunConfig, TuneRunConfig, ...) keeps the sections it has and
    leaves out those of other commands. By default it is the run config the recipe's sections belong to:
    `cnn_fashion_tune` (which has `tune:`) loads as a TuneRunConfig, `cnn_fashion` as a RunConfig.
    """
    values = load_config_file(recipe_path(name))
    values.setdefault("name", name)
    return validate(from_dict(cls or run_config_class(set(values), f"recipe {name!r}"), values))
