"""Optimizers by name: Adam, AdamW (decoupled weight decay), SGD with momentum."""
from __future__ import annotations

import keras

from fmkeras.config import TrainConfig


def build_optimizer(cfg: TrainConfig, learning_rate) -> keras.optimizers.Optimizer:
    """`learning_rate` is a float or a schedule (see fmkeras.train.schedules)."""
    decay = cfg.weight_decay or None
    ema = {"use_ema": True, "ema_momentum": cfg.ema_momentum} if cfg.ema_momentum else {}
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=decay, **ema)
    if cfg.optimizer == "adamw":
        # AdamW is Adam with decoupled weight decay; without a decay it would just be Adam.
        return keras.optimizers.AdamW(learning_rate, weight_decay=cfg.weight_decay or 0.004, **ema)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=cfg.momentum, weight_decay=decay, **ema)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def apply_l2(model: keras.Model, factor: float) -> int:
    """Adds an L2 penalty of `factor` to every trainable conv/dense kernel; returns how many."""
    if not factor:
        return 0
    count = 0
    for layer in model._flatten_layers(include_self=False):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and getattr(kernel, "trainable", False) and len(kernel.shape) >= 2:
            kernel.regularizer = keras.regularizers.L2(factor)
            count += 1
    return count
