"""Learning-rate schedules: constant, warmup+cosine, linear warmup+linear decay, inverse-time decay, one-cycle.

Keras provides cosine (with warmup) and inverse-time decay; linear warmup followed by linear decay is
written here, since Keras' PolynomialDecay has no warmup, and so is the one-cycle policy (Smith & Topin
2017, as fastai's `fit_one_cycle`): the LR rises from peak/`one_cycle_div` to the peak over the warmup
(`train.warmup_steps`, else `one_cycle_pct_start` of the steps) and anneals to peak/(div*final_div),
both phases cosine; the momentum (SGD momentum, Adam/AdamW beta_1) moves the opposite way, high -> low
-> high (`train.one_cycle_momentum`; see fmkeras.train.optimizers for how it reaches the optimizer).
"""
from __future__ import annotations

import math

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


def _cosine_between(start, end, frac):
    """start -> end along half a cosine as frac goes 0 -> 1."""
    return end + (start - end) * 0.5 * (1.0 + keras.ops.cos(math.pi * frac))


def one_cycle_phase(step, warmup_steps: int, total_steps: int) -> tuple:
    """(in warmup?, fraction of the current phase done) at `step`, as tensors."""
    step = keras.ops.cast(step, "float32")
    warm = float(max(warmup_steps, 1))
    rise = keras.ops.clip(step / warm, 0.0, 1.0)
    fall = keras.ops.clip((step - warmup_steps) / float(max(total_steps - warmup_steps, 1)), 0.0, 1.0)
    return step < warmup_steps, rise, fall


def one_cycle_momentum(step, high: float, low: float, warmup_steps: int, total_steps: int):
    """The momentum of the one-cycle policy: high -> low over the warmup, low -> high after it."""
    warming, rise, fall = one_cycle_phase(step, warmup_steps, total_steps)
    return keras.ops.where(warming, _cosine_between(high, low, rise), _cosine_between(low, high, fall))


@keras.saving.register_keras_serializable(package="fmkeras")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """peak/div -> peak over `warmup_steps`, then peak -> peak/(div*final_div) until `total_steps`; cosine."""

    def __init__(self, peak_learning_rate, warmup_steps, total_steps, div=25.0, final_div=1e4):
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.div, self.final_div = float(div), float(final_div)

    def __call__(self, step):
        warming, rise, fall = one_cycle_phase(step, self.warmup_steps, self.total_steps)
        peak = self.peak_learning_rate
        return keras.ops.where(warming, _cosine_between(peak / self.div, peak, rise),
                               _cosine_between(peak, peak / (self.div * self.final_div), fall))

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "div": self.div, "final_div": self.final_div}


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
    if cfg.schedule == "one_cycle":
        warmup = cfg.warmup_steps or max(1, int(round(cfg.one_cycle_pct_start * total_steps)))
        return OneCycle(lr, warmup, total_steps, cfg.one_cycle_div, cfg.one_cycle_final_div)
    if cfg.schedule == "inverse_time":
        return keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=cfg.decay_steps,
                                                           decay_rate=cfg.decay_rate)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")
