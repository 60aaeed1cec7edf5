"""Backbones: functional builders returning feature models, registered by name."""
from fmkeras.backbones.registry import BackboneSpec, WeightPreset, get_backbone, list_backbones, register_backbone
from fmkeras.backbones import cnn  # noqa: F401  (registers "cnn")
from fmkeras.backbones import alexnet, applications, efficientnet_lite, lenet, resnet  # noqa: F401  (the others)
from fmkeras.backbones import vit  # noqa: F401  (registers "vit")
from fmkeras.backbones import text_transformer  # noqa: F401  (registers "text_transformer")

__all__ = ["BackboneSpec", "WeightPreset", "get_backbone", "list_backbones", "register_backbone"]
