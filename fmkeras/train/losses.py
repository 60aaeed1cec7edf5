"""Classification losses by name, including two that tolerate noisy (weak) labels.

- crossentropy: the usual (with `train.label_smoothing` when set).
- symmetric: Symmetric Cross Entropy (Wang et al. 2019), alpha * CE(y, p) + beta * CE(p, y) with
  log(0) in the reverse term clipped to A = -4; the reverse term is bounded, so flipped labels pull less.
- bootstrap: soft bootstrapping (Reed et al. 2015), CE against beta * y + (1 - beta) * p, letting the
  model's own confident prediction discount a wrong label.
- binary_crossentropy: one binary cross-entropy per class, averaged, for multi-label models (one sigmoid per
  class, multi-hot (N, K) labels; `train.label_smoothing` pulls the targets towards 0.5).
Labels may be integers (N,) or one-hot/smoothed (N, K).

Example:
    model.compile(optimizer="adam", loss=build_loss(TrainConfig(loss="symmetric")))
"""
from __future__ import annotations

import keras
import tensorflow as tf

from fmkeras.config import TrainConfig

EPS = 1e-7


def _one_hot(labels, probabilities):
    if len(labels.shape) == len(probabilities.shape):
        return tf.cast(labels, probabilities.dtype)
    depth = tf.shape(probabilities)[-1]
    return tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), depth, dtype=probabilities.dtype)


@keras.saving.register_keras_serializable(package="fmkeras")
class SymmetricCrossEntropy(keras.losses.Loss):
    """alpha * CE(y, p) + beta * RCE with RCE = -sum p * log(y), log(0) := `log_zero` (A)."""

    def __init__(self, alpha=0.1, beta=1.0, log_zero=-4.0, name="symmetric_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha, self.beta, self.log_zero = alpha, beta, log_zero

    def call(self, y_true, y_pred):
        y = _one_hot(y_true, y_pred)
        p = tf.clip_by_value(y_pred, EPS, 1.0)
        ce = -tf.reduce_sum(y * tf.math.log(p), axis=-1)
        log_y = tf.where(y > 0, tf.math.log(tf.maximum(y, EPS)), tf.cast(self.log_zero, y.dtype))
        rce = -tf.reduce_sum(p * log_y, axis=-1)
        return self.alpha * ce + self.beta * rce

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta, "log_zero": self.log_zero}


@keras.saving.register_keras_serializable(package="fmkeras")
class SoftBootstrap(keras.losses.Loss):
    """CE(beta * y + (1 - beta) * p, p), with the prediction in the target not back-propagated."""

    def __init__(self, beta=0.95, name="soft_bootstrap", **kwargs):
        super().__init__(name=name, **kwargs)
        self.beta = beta

    def call(self, y_true, y_pred):
        y = _one_hot(y_true, y_pred)
        p = tf.clip_by_value(y_pred, EPS, 1.0)
        target = self.beta * y + (1.0 - self.beta) * tf.stop_gradient(p)
        return -tf.reduce_sum(target * tf.math.log(p), axis=-1)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


def build_loss(cfg: TrainConfig) -> keras.losses.Loss:
    """The loss named by `cfg.loss` (labels one-hot when `cfg.label_smoothing` is set)."""
    if cfg.loss == "symmetric":
        return SymmetricCrossEntropy()
    if cfg.loss == "bootstrap":
        return SoftBootstrap()
    if cfg.loss == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(label_smoothing=cfg.label_smoothing)
    if cfg.loss != "crossentropy":
        raise ValueError(f"`train.loss` must be one of crossentropy, symmetric, bootstrap, binary_crossentropy. "
                         f"Received: {cfg.loss!r}")
    if cfg.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()
