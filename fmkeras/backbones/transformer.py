"""Pieces shared by the Transformer backbones (ViT, text): pre-norm encoder blocks and token layers.

A pre-norm block is `x + MHA(LN(x))` then `x + MLP(LN(x))` (the ViT / GPT-2 ordering, which
trains stably without warmup tricks at small sizes). Masks from `Embedding(mask_zero=True)`
flow through every layer here, so padding tokens are never attended to.
"""
from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="fmkeras")
class ClassToken(keras.layers.Layer):
    """Prepends one learned token to a sequence: (N, L, D) -> (N, L + 1, D)."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="zeros", name="token")

    def call(self, x):
        batch = keras.ops.shape(x)[0]
        token = keras.ops.broadcast_to(keras.ops.cast(self.token, x.dtype), (batch, 1, x.shape[-1]))
        return keras.ops.concatenate([token, x], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])


@keras.saving.register_keras_serializable(package="fmkeras")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding per position to a fixed-length sequence (keeps the input mask)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        self.positions = self.add_weight(shape=(1, input_shape[1], input_shape[2]), name="positions",
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, x):
        return x + keras.ops.cast(self.positions, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="fmkeras")
class TakeToken(keras.layers.Layer):
    """Selects the token at `index`: (N, L, D) -> (N, D) (the class token's output)."""

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, x):
        return x[:, self.index]

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "index": self.index}


def encoder_block(x, heads: int, mlp_dim: int, dropout: float = 0.0, name: str = "block"):
    """One pre-norm Transformer encoder block on (N, L, D) tokens; returns the same shape."""
    dim = x.shape[-1]
    if dim % heads:
        raise ValueError(f"width must be divisible by `heads`. Received: dim={dim}, heads={heads}")
    y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln1")(x)
    y = keras.layers.MultiHeadAttention(heads, dim // heads, dropout=dropout, name=f"{name}_attention")(y, y)
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{name}_attention_dropout")(y)
    x = keras.layers.Add(name=f"{name}_add1")([x, y])
    y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln2")(x)
    y = keras.layers.Dense(mlp_dim, activation="gelu", name=f"{name}_mlp1")(y)
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{name}_mlp_dropout")(y)
    y = keras.layers.Dense(dim, name=f"{name}_mlp2")(y)
    return keras.layers.Add(name=f"{name}_add2")([x, y])


def encoder(x, depth: int, heads: int, mlp_dim: int, dropout: float = 0.0):
    """`depth` encoder blocks named block1..blockN, then a final LayerNorm named "encoder_norm"."""
    for i in range(1, depth + 1):
        x = encoder_block(x, heads, mlp_dim, dropout, name=f"block{i}")
    return keras.layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(x)
