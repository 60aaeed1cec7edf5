"""Per-variable learning-rate multipliers (discriminative LRs) for Keras 3 optimizers.

Keras 3 optimizers have one learning rate for all variables. Scaling gradients instead would
not work for Adam/AdamW (their update is invariant to the gradient's scale), so these
subclasses scale the *learning rate* handed to `update_step` for each variable: the update
of a variable with multiplier m is exactly the update at learning rate m * lr. Decoupled
weight decay (AdamW) still uses the base learning rate.

Multipliers are keyed by variable path (e.g. "conv2_block1_1_conv/kernel"), so they survive
`model.save` / `load_model` with the optimizer.

Example:
    opt = with_lr_multipliers(keras.optimizers.Adam(1e-4), {"block1_conv1/kernel": 0.1})
"""
from __future__ import annotations

import keras


class _LRMultiplierMixin:
    """Scales the learning rate of each variable by `lr_multipliers.get(variable.path, 1.0)`."""

    def __init__(self, *args, lr_multipliers=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_multipliers = {str(k): float(v) for k, v in (lr_multipliers or {}).items()}
        self._lr_scales = []

    def build(self, variables):
        # Index -> multiplier, since the TF backend passes tf.Variables (no .path) to update_step.
        self._lr_scales = [self.lr_multipliers.get(v.path, 1.0) for v in variables]
        super().build(variables)

    def update_step(self, gradient, variable, learning_rate):
        scale = self._lr_scales[self._get_variable_index(variable)]
        if scale != 1.0:
            learning_rate = learning_rate * scale
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "lr_multipliers": dict(self.lr_multipliers)}


@keras.saving.register_keras_serializable(package="fmkeras")
class MultiplierAdam(_LRMultiplierMixin, keras.optimizers.Adam):
    """Adam with per-variable learning-rate multipliers."""


@keras.saving.register_keras_serializable(package="fmkeras")
class MultiplierAdamW(_LRMultiplierMixin, keras.optimizers.AdamW):
    """AdamW with per-variable learning-rate multipliers."""


@keras.saving.register_keras_serializable(package="fmkeras")
class MultiplierSGD(_LRMultiplierMixin, keras.optimizers.SGD):
    """SGD (with momentum) with per-variable learning-rate multipliers."""


_CLASSES = {keras.optimizers.AdamW: MultiplierAdamW, keras.optimizers.Adam: MultiplierAdam,
            keras.optimizers.SGD: MultiplierSGD}


def with_lr_multipliers(optimizer: keras.optimizers.Optimizer, multipliers: dict) -> keras.optimizers.Optimizer:
    """A copy of `optimizer` (same config and schedule) whose variables' LRs are scaled by `multipliers`.

    Args:
        multipliers: dict. Variable path -> factor; variables not listed keep factor 1.
    """
    cls = _CLASSES.get(type(optimizer))
    if cls is None:
        raise ValueError(f"per-variable learning rates support {', '.join(c.__name__ for c in _CLASSES)}. "
                         f"Received: optimizer={type(optimizer).__name__}")
    return cls.from_config({**optimizer.get_config(), "lr_multipliers": multipliers})
