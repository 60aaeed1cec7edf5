"""Backbones: functional builders returning feature models, registered by name."""
from fmkeras.backbones.registry import BackboneSpec, get_backbone, list_backbones, register_backbone
from fmkeras.backbones import cnn  # noqa: F401  (registers "cnn")

__all__ = ["BackboneSpec", "get_backbone", "list_backbones", "register_backbone"]
