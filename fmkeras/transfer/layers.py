"""Small serializable layers the classifier graph needs (no Lambda: models stay safe_mode-loadable)."""
from __future__ import annotations

import keras

from fmkeras.backbones import get_backbone


@keras.saving.register_keras_serializable(package="fmkeras")
class ToChannels(keras.layers.Layer):
    """Converts 1 <-> 3 channels (grayscale replicated to RGB, or RGB to luma)."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, x):
        have = x.shape[-1]
        if have == self.channels:
            return x
        if self.channels == 3:
            return keras.ops.repeat(x, 3, axis=-1)
        weights = keras.ops.convert_to_tensor([0.2989, 0.5870, 0.1140], dtype=x.dtype)
        return keras.ops.sum(x * weights, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="fmkeras")
class BackbonePreprocessing(keras.layers.Layer):
    """Applies a registered backbone's preprocessing to pixels in [0, 255]."""

    def __init__(self, backbone: str, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self._fn = get_backbone(backbone).preprocess

    def call(self, x):
        return self._fn(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone}


@keras.saving.register_keras_serializable(package="fmkeras")
class TwoClassProbabilities(keras.layers.Layer):
    """A sigmoid output p (shape (..., 1)) as two-class probabilities [1 - p, p]."""

    def call(self, p):
        return keras.ops.concatenate([1.0 - p, p], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)
