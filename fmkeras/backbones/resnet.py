"""ResNet18/ResNet34: basic-block ResNets (He et al. 2015), since keras.applications has none.

Layer names follow keras.applications' ResNets (`conv3_block2_1_conv`, ...), so blocks are
found the same way for fine-tuning. With the default widths the trainable parameter counts
equal torchvision's resnet18/34 without the classifier (11,176,512 and 21,284,672).
`small_input=True` swaps the 7x7/2 stem and max-pool for one 3x3/1 conv (CIFAR-style).
"""
from __future__ import annotations

import keras

from fmkeras.backbones.registry import BackboneSpec, register_backbone

BN_EPSILON = 1.001e-5


def _conv_bn(x, filters, kernel, stride, name, relu=True):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def basic_block(x, filters, stride, name):
    """conv3x3-BN-ReLU, conv3x3-BN, + shortcut (1x1 conv-BN when the shape changes), ReLU."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, f"{name}_0", relu=False)
    y = _conv_bn(x, filters, 3, stride, f"{name}_1")
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def build_resnet(input_shape, blocks_per_stage, weights=None, widths=(64, 128, 256, 512), small_input=False,
                 name="resnet") -> keras.Model:
    """A basic-block ResNet feature extractor; output (H/32, W/32, widths[-1]) (H/8 with small_input).

    Args:
        blocks_per_stage: tuple of int. Basic blocks in each stage, e.g. (2, 2, 2, 2) for ResNet18.
        widths: tuple of int. Filters of each stage.
        small_input: bool. CIFAR stem (3x3 stride-1 conv, no max-pool) for 32 px images.
    """
    if weights is not None:
        raise ValueError(f"{name} has no weight presets; pass a weight file. Received: weights={weights!r}")
    if len(widths) != len(blocks_per_stage):
        raise ValueError(f"`widths` needs one entry per stage ({len(blocks_per_stage)}). Received: widths={widths}")
    inputs = keras.Input(input_shape, name="pixels")
    if small_input:
        x = _conv_bn(inputs, widths[0], 3, 1, "conv1")
    else:
        x = _conv_bn(inputs, widths[0], 7, 2, "conv1")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    for stage, (width, count) in enumerate(zip(widths, blocks_per_stage), start=2):
        for block in range(1, count + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            x = basic_block(x, width, stride, f"conv{stage}_block{block}")
    return keras.Model(inputs, x, name=name)


def build_resnet18(input_shape, weights=None, widths=(64, 128, 256, 512), small_input=False, name="resnet18"):
    """ResNet18: (2, 2, 2, 2) basic blocks."""
    return build_resnet(input_shape, (2, 2, 2, 2), weights, tuple(widths), small_input, name)


def build_resnet34(input_shape, weights=None, widths=(64, 128, 256, 512), small_input=False, name="resnet34"):
    """ResNet34: (3, 4, 6, 3) basic blocks."""
    return build_resnet(input_shape, (3, 4, 6, 3), weights, tuple(widths), small_input, name)


def scale_to_symmetric(x):
    """[0, 255] -> [-1, 1]."""
    return x / 127.5 - 1.0


for _name, _builder, _params in (("resnet18", build_resnet18, "11.2M"), ("resnet34", build_resnet34, "21.3M")):
    register_backbone(BackboneSpec(
        name=_name, builder=_builder, preprocess=scale_to_symmetric, default_input_size=(224, 224),
        min_input_size=(32, 32), description=f"basic-block ResNet ({_params} params; small_input=true for 32 px)"))
