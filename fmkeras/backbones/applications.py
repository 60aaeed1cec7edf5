"""ResNet50V2 and VGG16 from keras.applications (include_top=False), with their ImageNet presets.

The builders always build with random weights; `weights="imagenet"` is resolved by
fmkeras.transfer.weights from the presets below (the file names, URLs and hashes
keras.applications itself uses, so a file already in the Keras cache is found).
"""
from __future__ import annotations

import keras

from fmkeras.backbones.registry import BackboneSpec, WeightPreset, register_backbone

KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"
RESNET50V2_NOTOP = "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _no_presets_here(name, weights):
    if weights is not None:
        raise ValueError(f"{name} builders take weights=None; presets are loaded by fmkeras.transfer.weights. "
                         f"Received: weights={weights!r}")


def build_resnet50v2(input_shape, weights=None, name="resnet50v2") -> keras.Model:
    """keras.applications.ResNet50V2 without its top: output (H/32, W/32, 2048)."""
    _no_presets_here("resnet50v2", weights)
    return keras.applications.ResNet50V2(include_top=False, weights=None, input_shape=tuple(input_shape), name=name)


def build_vgg16(input_shape, weights=None, name="vgg16") -> keras.Model:
    """keras.applications.VGG16 without its top: output (H/32, W/32, 512)."""
    _no_presets_here("vgg16", weights)
    return keras.applications.VGG16(include_top=False, weights=None, input_shape=tuple(input_shape), name=name)


def preprocess_resnet_v2(x):
    """[0, 255] -> [-1, 1] ("tf" mode of keras.applications.resnet_v2.preprocess_input)."""
    return keras.applications.resnet_v2.preprocess_input(x)


def preprocess_vgg16(x):
    """RGB [0, 255] -> BGR minus the ImageNet mean ("caffe" mode of vgg16.preprocess_input)."""
    return keras.applications.vgg16.preprocess_input(x)


register_backbone(BackboneSpec(
    name="resnet50v2", builder=build_resnet50v2, preprocess=preprocess_resnet_v2, default_input_size=(224, 224),
    channels=3, min_input_size=(32, 32), description="keras.applications ResNet50V2 (23.6M params), imagenet",
    presets={"imagenet": WeightPreset(RESNET50V2_NOTOP, f"{KERAS_APPLICATIONS}resnet/{RESNET50V2_NOTOP}",
                                      "fac2f116257151a9d068a22e544a4917")}))

register_backbone(BackboneSpec(
    name="vgg16", builder=build_vgg16, preprocess=preprocess_vgg16, default_input_size=(224, 224),
    channels=3, min_input_size=(32, 32), description="keras.applications VGG16 (14.7M params), imagenet",
    presets={"imagenet": WeightPreset(VGG16_NOTOP, f"{KERAS_APPLICATIONS}vgg16/{VGG16_NOTOP}",
                                      "6d6bbae143d832006294945121d1f1fc")}))
