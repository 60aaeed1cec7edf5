"""A Transformer encoder over token ids: token + position embeddings, pre-norm encoder blocks.

Input: int token ids (N, sequence_length) from a `TextVectorization` layer, 0 = padding
(masked out of attention and of the head's average pooling). Output: token features
(N, sequence_length, dim). Sizes are data (`TEXT_TRANSFORMER_SIZES`); any field can be overridden.

Example:
    backbone = build_text_transformer((64,), vocab_size=20000, size="small")
"""
from __future__ import annotations

import keras

from fmkeras.backbones.registry import BackboneSpec, register_backbone
from fmkeras.backbones.transformer import PositionEmbedding, encoder

TEXT_TRANSFORMER_SIZES = {
    "tiny": {"dim": 32, "depth": 1, "heads": 2, "mlp_dim": 64},
    "small": {"dim": 64, "depth": 2, "heads": 4, "mlp_dim": 128},
    "base": {"dim": 256, "depth": 4, "heads": 8, "mlp_dim": 1024},
}


def build_text_transformer(input_shape, weights=None, vocab_size=20000, size="small", dim=None, depth=None,
                           heads=None, mlp_dim=None, dropout=0.1, name="text_transformer") -> keras.Model:
    """Builds the text encoder for token ids of shape `input_shape` = (sequence_length,).

    Args:
        vocab_size: int. Number of token ids (the TextVectorization vocabulary size, incl. pad and OOV).
        size: str. One of `TEXT_TRANSFORMER_SIZES` (tiny, small, base). Defaults to "small".
        dim, depth, heads, mlp_dim: int. Override the size preset.
    """
    if weights is not None:
        raise ValueError(f"text_transformer has no weight presets; pass a weight file. Received: weights={weights!r}")
    if size not in TEXT_TRANSFORMER_SIZES:
        raise ValueError(f"`size` must be one of {', '.join(TEXT_TRANSFORMER_SIZES)}. Received: size={size!r}")
    opts = dict(TEXT_TRANSFORMER_SIZES[size])
    opts.update({k: v for k, v in {"dim": dim, "depth": depth, "heads": heads, "mlp_dim": mlp_dim}.items()
                 if v is not None})
    inputs = keras.Input(tuple(input_shape), dtype="int64", name="token_ids")
    x = keras.layers.Embedding(vocab_size, opts["dim"], mask_zero=True, name="token_embedding")(inputs)
    x = PositionEmbedding(name="position_embedding")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    x = encoder(x, opts["depth"], opts["heads"], opts["mlp_dim"], dropout)
    return keras.Model(inputs, x, name=name)


def _identity(x):
    return x


register_backbone(BackboneSpec(
    name="text_transformer", builder=build_text_transformer, preprocess=_identity, default_input_size=(64,),
    min_input_size=(1,), modality="text",
    description="Transformer encoder over TextVectorization token ids (size=tiny|small|base)"))
