"""Vision Transformer (Dosovitskiy et al. 2021): patch embedding, class token, pre-norm encoder.

Sizes are data (`VIT_SIZES`); any field can be overridden, e.g. a test-sized model:
    build_vit((28, 28, 1), size="tiny", patch_size=7, dim=32, depth=1, heads=2, mlp_dim=64)
With `class_token=True` the backbone returns the class token's features (N, dim); otherwise it
returns the patch tokens (N, patches, dim) and the head averages them (`model.head.pooling=avg`).
"""
from __future__ import annotations

import keras

from fmkeras.backbones.registry import BackboneSpec, register_backbone
from fmkeras.backbones.transformer import ClassToken, PositionEmbedding, TakeToken, encoder

# Width, depth, heads and MLP width of the standard sizes (ViT paper / DeiT for tiny and small).
VIT_SIZES = {
    "tiny": {"dim": 192, "depth": 12, "heads": 3, "mlp_dim": 768},
    "small": {"dim": 384, "depth": 12, "heads": 6, "mlp_dim": 1536},
    "base": {"dim": 768, "depth": 12, "heads": 12, "mlp_dim": 3072},
}


def vit_options(size: str, **overrides) -> dict:
    """The size preset `size` with `overrides` (dim, depth, heads, mlp_dim) applied."""
    if size not in VIT_SIZES:
        raise ValueError(f"`size` must be one of {', '.join(VIT_SIZES)}. Received: size={size!r}")
    options = dict(VIT_SIZES[size])
    options.update({k: v for k, v in overrides.items() if v is not None})
    return options


def build_vit(input_shape, weights=None, size="tiny", patch_size=16, dim=None, depth=None, heads=None,
              mlp_dim=None, class_token=True, dropout=0.0, name="vit") -> keras.Model:
    """Builds a ViT feature extractor for images scaled to [0, 1].

    Args:
        size: str. One of `VIT_SIZES` (tiny, small, base). Defaults to "tiny".
        patch_size: int. Side of the square patches; must divide the input height and width.
        dim, depth, heads, mlp_dim: int. Override the size preset.
        class_token: bool. Return the class token's features (else all patch tokens).
    """
    if weights is not None:
        raise ValueError(f"vit has no weight presets here (no downloads); pass a weight file. "
                         f"Received: weights={weights!r}")
    height, width = input_shape[:2]
    if height % patch_size or width % patch_size:
        raise ValueError(f"`patch_size` must divide the input size. Received: patch_size={patch_size}, "
                         f"input size={height}x{width}")
    opts = vit_options(size, dim=dim, depth=depth, heads=heads, mlp_dim=mlp_dim)
    inputs = keras.Input(input_shape, name="pixels")
    x = keras.layers.Conv2D(opts["dim"], patch_size, strides=patch_size, name="patch_embedding")(inputs)
    x = keras.layers.Reshape(((height // patch_size) * (width // patch_size), opts["dim"]), name="patches")(x)
    if class_token:
        x = ClassToken(name="class_token")(x)
    x = PositionEmbedding(name="position_embedding")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    x = encoder(x, opts["depth"], opts["heads"], opts["mlp_dim"], dropout)
    if class_token:
        x = TakeToken(0, name="class_token_output")(x)
    return keras.Model(inputs, x, name=name)


def scale_to_unit(x):
    """[0, 255] -> [0, 1]."""
    return x / 255.0


register_backbone(BackboneSpec(
    name="vit", builder=build_vit, preprocess=scale_to_unit, default_input_size=(224, 224),
    min_input_size=(8, 8),
    description="Vision Transformer (size=tiny|small|base, patch_size, class_token; set model.input_size "
                "divisible by patch_size)"))
