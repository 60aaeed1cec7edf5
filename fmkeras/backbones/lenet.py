"""LeNet-5 (LeCun et al. 1998) feature extractor: two conv + average-pool stages on 32x32 inputs.

The classic dense layers (120, 84) belong to the head: recipe `lenet` sets
`model.head.dense_units: [120, 84]` with `pooling: flatten`.
"""
from __future__ import annotations

import keras

from fmkeras.backbones.cnn import scale_to_unit
from fmkeras.backbones.registry import BackboneSpec, register_backbone


def build_lenet(input_shape, weights=None, filters=(6, 16), activation="tanh", name="lenet") -> keras.Model:
    """Conv5x5(6)-AvgPool-Conv5x5(16)-AvgPool; output (5, 5, 16) at 32x32.

    Args:
        filters: tuple of two ints. Filters of the two conv layers.
        activation: str. "tanh" as in the paper; "relu" trains faster.
    """
    if weights is not None:
        raise ValueError(f"lenet has no weight presets; pass a weight file. Received: weights={weights!r}")
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    for block, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(width, 5, activation=activation, name=f"block{block}_conv")(x)
        x = keras.layers.AveragePooling2D(2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name=name)


register_backbone(BackboneSpec(
    name="lenet", builder=build_lenet, preprocess=scale_to_unit, default_input_size=(32, 32),
    min_input_size=(32, 32), description="LeNet-5 conv/avg-pool stages (28x28 inputs are resized to 32x32)"))
