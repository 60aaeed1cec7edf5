"""`fmkeras list`: the registered backbones and built-in recipes."""
from __future__ import annotations

HELP = "list backbones and recipes"


def run() -> None:
    from fmkeras.backbones import get_backbone, list_backbones
    from fmkeras.recipes import default_recipe, list_recipes
    print("backbones:")
    for name in list_backbones():
        spec = get_backbone(name)
        print(f"  {name:12s} default input {spec.default_input_size}  {spec.description}")
    print("recipes:")
    default = default_recipe()
    for name in list_recipes():
        print(f"  {name}" + ("  (the default on this machine: make train, fmkeras train without --recipe)"
                             if name == default else ""))
