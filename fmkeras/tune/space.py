"""The search space is data: `tune.space` maps config paths to keras-tuner hyperparameters.

Each entry of `tune.space` (in a recipe or a --config YAML file) is one of:
    train.learning_rate: {min: 1.0e-4, max: 1.0e-2, sampling: log}   # Float (Int if both bounds are ints)
    finetune.unfreeze_layers: {min: 0, max: 6, step: 2}             # Int
    train.optimizer: [adam, adamw, sgd]                              # Choice
    model.head.dense_units: [32, 64, 128]                            # Choice; a number becomes (n,)
    train.epochs: 2                                                  # Fixed
    augment_strength: {min: 0.0, max: 1.0}                           # scales AUGMENT_AT_FULL_STRENGTH
The hyperparameter is named after its config path, so a trial's values read as config overrides.

Example:
    overrides = declare_space(hp, cfg.tune.space)
    trial_cfg = trial_config(cfg, overrides)
"""
from __future__ import annotations

from fmkeras.config import RunConfig, apply_overrides
from fmkeras.errors import ConfigError

AUGMENT_STRENGTH = "augment_strength"
# At strength 1: rotation (degrees), shift/zoom/brightness/contrast (fractions); strength s scales them all.
AUGMENT_AT_FULL_STRENGTH = {"rotation": 20.0, "shift": 0.15, "zoom": 0.15, "brightness": 0.2, "contrast": 0.2}
RANGE_KEYS = {"min", "max", "sampling", "step"}


def _declare(hp, name: str, spec):
    where = f"tune.space.{name}"
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"`{where}` lists no choices. Received: {where}={spec!r}")
        return hp.Choice(name, spec)
    if isinstance(spec, dict):
        unknown = set(spec) - RANGE_KEYS
        if unknown or not {"min", "max"} <= set(spec):
            raise ConfigError(f"`{where}` must be {{min, max[, sampling, step]}}, a list of choices or a value. "
                              f"Received: {where}={spec!r}")
        low, high = spec["min"], spec["max"]
        if not low <= high:
            raise ConfigError(f"`{where}` needs min <= max. Received: {where}={spec!r}")
        sampling = spec.get("sampling", "linear")
        if sampling not in ("linear", "log", "reverse_log"):
            raise ConfigError(f"`{where}.sampling` must be linear, log or reverse_log. Received: {sampling!r}")
        if isinstance(low, int) and isinstance(high, int) and not isinstance(spec.get("step", 1), float):
            return hp.Int(name, low, high, step=spec.get("step"), sampling=sampling)
        return hp.Float(name, float(low), float(high), step=spec.get("step"), sampling=sampling)
    return hp.Fixed(name, spec)


def declare_space(hp, space: dict) -> dict:
    """Declares every entry of `space` on `hp`; returns {config path: this trial's value}."""
    return {name: _declare(hp, name, spec) for name, spec in space.items()}


def augment_overrides(strength: float) -> dict:
    """Config overrides for an augmentation strength in [0, 1]."""
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"`tune.space.{AUGMENT_STRENGTH}` values must lie in [0, 1]. Received: {strength!r}")
    return {f"data.augment.{k}": round(v * strength, 4) for k, v in AUGMENT_AT_FULL_STRENGTH.items()}


def trial_config(base: RunConfig, values: dict) -> RunConfig:
    """`base` with a trial's values applied (keras-tuner's own `tuner/...` values are ignored)."""
    overrides = {}
    for name, value in values.items():
        if name.startswith("tuner/"):
            continue
        if name == AUGMENT_STRENGTH:
            overrides.update(augment_overrides(value))
        else:
            overrides[name] = value
    try:
        return apply_overrides(base, overrides)
    except ConfigError as err:
        raise ConfigError(f"tune.space: {err}") from None
