"""Recipes: named configs (YAML files beside this module) mirroring the reference examples.

A recipe may start from another: `base: cnn_fashion` at its top level takes that recipe's values and lays
its own over them (nested sections merge field by field; a list or a value replaces the base's), so a
variant states only what it changes.

Example:
    cfg = load_recipe("cnn_fashion")
"""
from __future__ import annotations

import os

from fmkeras import hardware
from fmkeras.config import deep_merge, from_dict, load_config_file, run_config_class, validate
from fmkeras.errors import ConfigError

RECIPE_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RECIPE = "cnn_fashion"
FLOAT32_CPU_RECIPE = "cnn_fashion_fast"  # the default where training runs in float32 on the CPU
PHOTO_RECIPE = "efficientnet_lite0_transfer"  # the default for a folder of images: transfer from ImageNet


def default_recipe(data_source: str = "") -> str:
    """The recipe a run without --recipe (or --config) starts from, for `data_source` on this machine.

    A folder of images (`folder:DIR`) starts from the ImageNet transfer recipe. Anything else from
    `cnn_fashion` where the wide net trains fast - a GPU, or a CPU with native bfloat16 (AMX / AVX512-BF16,
    `train.precision=auto` trains there in mixed_bfloat16) - and from `cnn_fashion_fast` on a CPU that trains
    in float32 (AVX2-only x86, most laptops), where the wide net would take the time of keras.io's convnet.
    """
    if str(data_source).startswith("folder:"):
        return PHOTO_RECIPE
    return DEFAULT_RECIPE if hardware.has_gpu() or hardware.cpu_has_native_bfloat16() else FLOAT32_CPU_RECIPE


def list_recipes() -> list:
    """Names of the built-in recipes, sorted."""
    return sorted(f[: -len(".yaml")] for f in os.listdir(RECIPE_DIR) if f.endswith(".yaml"))


def recipe_path(name: str) -> str:
    path = os.path.join(RECIPE_DIR, f"{name}.yaml")
    if not os.path.isfile(path):
        raise ConfigError(f"unknown recipe {name!r}; available recipes: {', '.join(list_recipes())}")
    return path


def recipe_values(name: str, _chain: tuple = ()) -> dict:
    """The raw values of recipe `name`, its `base` recipe's (recursively) merged under them."""
    if name in _chain:
        raise ConfigError(f"recipe {_chain[-1]!r}: `base` goes round in a circle: {' -> '.join((*_chain, name))}")
    values = load_config_file(recipe_path(name))
    base = values.pop("base", None)
    if base is None:
        return values
    if not isinstance(base, str) or base not in list_recipes():
        raise ConfigError(f"recipe {name!r} ({recipe_path(name)}): `base` must name a recipe "
                          f"({', '.join(list_recipes())}). Received: base={base!r}")
    inherited = recipe_values(base, (*_chain, name))
    inherited.pop("name", None)  # a run of this recipe is named after it, not after its base
    return deep_merge(inherited, values)


def load_recipe(name: str, cls=None):
    """The validated config of recipe `name` (its `name` field defaults to the recipe's).

    Recipes are shared by the commands: `cls` (RunConfig, TuneRunConfig, ...) keeps the sections it has and
    leaves out those of other commands. By default it is the run config the recipe's sections belong to:
    `cnn_fashion_tune` (which has `tune:`) loads as a TuneRunConfig, `cnn_fashion` as a RunConfig.
    """
    values = recipe_values(name)
    values.setdefault("name", name)
    return validate(from_dict(cls or run_config_class(set(values), f"recipe {name!r}"), values))
