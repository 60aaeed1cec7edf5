"""AlexNet (Krizhevsky et al. 2012) feature extractor, single-tower, BatchNorm instead of LRN.

Five convs (11x11/4, 5x5, 3x3 x3) with 3x3/2 max-pools; "same" padding so small inputs
(32 px) still give a 1x1 map. The classic 4096-4096 dense layers belong to the head
(recipe `alexnet`).
"""
from __future__ import annotations

import keras

from fmkeras.backbones.cnn import scale_to_unit
from fmkeras.backbones.registry import BackboneSpec, register_backbone


def build_alexnet(input_shape, weights=None, filters=(96, 256, 384, 384, 256), batch_norm=True,
                  name="alexnet") -> keras.Model:
    """Output (H/32, W/32, filters[-1]) (7x7x256 at 224 px).

    Args:
        filters: tuple of five ints. Filters of the five conv layers.
        batch_norm: bool. BN after the first two convs (where the paper had local response normalisation).
    """
    if weights is not None:
        raise ValueError(f"alexnet has no weight presets; pass a weight file. Received: weights={weights!r}")
    if len(filters) != 5:
        raise ValueError(f"alexnet `filters` needs five entries. Received: filters={filters!r}")
    inputs = keras.Input(input_shape, name="pixels")
    x = keras.layers.Conv2D(filters[0], 11, strides=4, padding="same", activation="relu", name="block1_conv")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="block1_bn")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="block1_pool")(x)
    x = keras.layers.Conv2D(filters[1], 5, padding="same", activation="relu", name="block2_conv")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="block2_bn")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="block2_pool")(x)
    for i, width in enumerate(filters[2:], start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"block3_conv{i}")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="block3_pool")(x)
    return keras.Model(inputs, x, name=name)


register_backbone(BackboneSpec(
    name="alexnet", builder=build_alexnet, preprocess=scale_to_unit, default_input_size=(224, 224),
    min_input_size=(32, 32), description="AlexNet, single tower with BatchNorm"))
