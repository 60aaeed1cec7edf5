"""A small CNN: conv blocks (Conv-BN-ReLU x convs_per_block, then max-pool).

`filters=(32, 64, 128), convs_per_block=1` is the default Fashion-MNIST net (fast on CPU);
`filters=(32, 64), convs_per_block=1, batch_norm=False` is the reference cats-vs-dogs two-conv net.
"""
from __future__ import annotations

import keras

from fmkeras.backbones.registry import BackboneSpec, register_backbone


def build_cnn(input_shape, weights=None, filters=(32, 64, 128), convs_per_block=1, batch_norm=True,
              kernel_size=3, name="cnn") -> keras.Model:
    """Builds the CNN feature extractor; returns a model whose output is the last feature map.

    Args:
        filters: tuple of int. Filters of each block; each block halves the resolution.
        convs_per_block: int. Convolutions before each pooling.
        batch_norm: bool. Conv-BN-ReLU when true, Conv(bias)-ReLU otherwise.
    """
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    for block, width in enumerate(filters, start=1):
        for conv in range(1, convs_per_block + 1):
            x = keras.layers.Conv2D(width, kernel_size, padding="same", use_bias=not batch_norm,
                                    name=f"block{block}_conv{conv}")(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"block{block}_bn{conv}")(x)
            x = keras.layers.ReLU(name=f"block{block}_relu{conv}")(x)
        x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
    if weights is not None:
        # Weight files are loaded by fmkeras.transfer.weights after building; there are no presets.
        raise ValueError(f"cnn has no weight presets. Received: weights={weights!r}")
    return keras.Model(inputs, x, name=name)


def scale_to_unit(x):
    """[0, 255] -> [0, 1]."""
    return x / 255.0


register_backbone(BackboneSpec(
    name="cnn", builder=build_cnn, preprocess=scale_to_unit, default_input_size=(28, 28),
    min_input_size=(8, 8), description="small Conv-BN-ReLU/MaxPool CNN (fast on CPU)"))
