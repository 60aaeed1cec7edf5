"""Optimizers by name: Adam, AdamW (decoupled weight decay), SGD with momentum.

With the one-cycle schedule the momentum cycles too (SGD momentum, Adam/AdamW beta_1). Keras 3
optimizers read `momentum`/`beta_1` as constants inside `update_step`, so the `Cycled*` subclasses
compute it from `self.iterations` there (`fmkeras.train.schedules.one_cycle_momentum`); Adam's bias
correction then uses the current beta_1, as fastai/PyTorch do.
"""
from __future__ import annotations

import keras

from fmkeras.backbones.layer_tree import all_layers
from fmkeras.config import TrainConfig
from fmkeras.train.schedules import OneCycle, one_cycle_momentum


class _CycledMomentumMixin:
    """`momentum_cycle` = {high, low, warmup_steps, total_steps}: the momentum at each step."""

    def __init__(self, *args, momentum_cycle=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.momentum_cycle = dict(momentum_cycle)

    def current_momentum(self):
        # The raw step counter, like the LR schedule (it counts batches, also under gradient accumulation).
        return one_cycle_momentum(self._iterations, **self.momentum_cycle)

    def get_config(self):
        return {**super().get_config(), "momentum_cycle": dict(self.momentum_cycle)}


class _CycledBeta1Mixin(_CycledMomentumMixin):
    def update_step(self, gradient, variable, learning_rate):
        base = self.beta_1
        object.__setattr__(self, "beta_1", self.current_momentum())  # read by Adam's update only
        try:
            return super().update_step(gradient, variable, learning_rate)
        finally:
            object.__setattr__(self, "beta_1", base)


@keras.saving.register_keras_serializable(package="fmkeras")
class CycledAdam(_CycledBeta1Mixin, keras.optimizers.Adam):
    """Adam whose beta_1 follows the one-cycle momentum."""


@keras.saving.register_keras_serializable(package="fmkeras")
class CycledAdamW(_CycledBeta1Mixin, keras.optimizers.AdamW):
    """AdamW whose beta_1 follows the one-cycle momentum."""


@keras.saving.register_keras_serializable(package="fmkeras")
class CycledSGD(_CycledMomentumMixin, keras.optimizers.SGD):
    """SGD whose momentum follows the one-cycle momentum (Keras' SGD update with that momentum)."""

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = keras.ops.cast(learning_rate, variable.dtype)
        gradient = keras.ops.cast(gradient, variable.dtype)
        momentum = keras.ops.cast(self.current_momentum(), variable.dtype)
        m = self.momentums[self._get_variable_index(variable)]
        self.assign(m, m * momentum - gradient * learning_rate)
        if self.nesterov:
            self.assign_add(variable, m * momentum - gradient * learning_rate)
        else:
            self.assign_add(variable, m)


def build_optimizer(cfg: TrainConfig, learning_rate) -> keras.optimizers.Optimizer:
    """`learning_rate` is a float or a schedule (see fmkeras.train.schedules); a OneCycle schedule with
    `cfg.one_cycle_momentum` set also cycles the momentum over the same steps."""
    decay = cfg.weight_decay or None
    extra = {"use_ema": True, "ema_momentum": cfg.ema_momentum} if cfg.ema_momentum else {}
    extra.update(gradient_clipping(cfg))
    if cfg.accumulate_steps > 1:
        # Keras' own accumulation (inside Optimizer.apply), so model.fit, the staged fine-tuning and the
        # custom distributed loop (apply_gradients) all honour it; the LR schedule still counts batches.
        extra["gradient_accumulation_steps"] = cfg.accumulate_steps
    cycled = isinstance(learning_rate, OneCycle) and bool(cfg.one_cycle_momentum)
    if cycled:
        high, low = cfg.one_cycle_momentum
        extra["momentum_cycle"] = {"high": float(high), "low": float(low),
                                   "warmup_steps": learning_rate.warmup_steps, "total_steps": learning_rate.total_steps}
    if cfg.optimizer == "adam":
        return (CycledAdam if cycled else keras.optimizers.Adam)(learning_rate, weight_decay=decay, **extra)
    if cfg.optimizer == "adamw":
        # AdamW is Adam with decoupled weight decay; without a decay it would just be Adam.
        return (CycledAdamW if cycled else keras.optimizers.AdamW)(learning_rate, weight_decay=cfg.weight_decay or 0.004,
                                                                   **extra)
    if cfg.optimizer == "sgd":
        # Cycling needs the momentum slots, which Keras' SGD only makes for momentum > 0.
        momentum = max(cfg.momentum, 0.5) if cycled else cfg.momentum
        return (CycledSGD if cycled else keras.optimizers.SGD)(learning_rate, momentum=momentum, weight_decay=decay,
                                                               **extra)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def gradient_clipping(cfg: TrainConfig) -> dict:
    """Keras optimizer arguments for `train.clipnorm` / `train.clipvalue` (0 = off)."""
    return {k: getattr(cfg, k) for k in ("clipnorm", "clipvalue") if getattr(cfg, k, 0)}


def apply_l2(model: keras.Model, factor: float) -> int:
    """Adds an L2 penalty of `factor` to every trainable conv/dense kernel; returns how many."""
    if not factor:
        return 0
    count = 0
    for layer in all_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and getattr(kernel, "trainable", False) and len(kernel.shape) >= 2:
            kernel.regularizer = keras.regularizers.L2(factor)
            count += 1
    return count
