"""Learning-rate schedules: constant, warmup+cosine, linear warmup+linear decay, inverse-time decay.

Keras provides cosine (with warmup) and inverse-time decay; only linear warmup followed by
linear decay is written here, since Keras' PolynomialDecay has no warmup.
"""
from __future__ import annotations

import keras

from fmkeras.config import TrainConfig


@keras.saving.register_keras_serializable(package="fmkeras")
class LinearWarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """0 -> peak over `warmup_steps`, then peak -> `end_learning_rate` linearly until `total_steps`."""

    def __init__(self, peak_learning_rate, warmup_steps, total_steps, end_learning_rate=0.0):
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = keras.ops.maximum(float(self.warmup_steps), 1.0)
        warmup = self.peak_learning_rate * step / warm
        span = keras.ops.maximum(float(self.total_steps - self.warmup_steps), 1.0)
        frac = keras.ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        decay = self.peak_learning_rate + (self.end_learning_rate - self.peak_learning_rate) * frac
        return keras.ops.where(step < self.warmup_steps, warmup, decay)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "end_learning_rate": self.end_learning_rate}


def build_schedule(cfg: TrainConfig, total_steps: int, learning_rate: float = None):
    """Returns a float or a LearningRateSchedule for `cfg.schedule` over `total_steps` steps."""
    lr = cfg.learning_rate if learning_rate is None else learning_rate
    total_steps = max(int(total_steps), cfg.warmup_steps + 1)
    if cfg.schedule == "constant":
        return lr
    if cfg.schedule == "cosine":
        if cfg.warmup_steps:
            return keras.optimizers.schedules.CosineDecay(
                0.0, decay_steps=total_steps - cfg.warmup_steps, warmup_target=lr, warmup_steps=cfg.warmup_steps)
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps)
    if cfg.schedule == "linear":
        return LinearWarmupLinearDecay(lr, cfg.warmup_steps, total_steps)
    if cfg.schedule == "inverse_time":
        return keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=cfg.decay_steps,
                                                           decay_rate=cfg.decay_rate)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")
