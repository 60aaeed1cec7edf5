"""The `tune` section of `fmkeras tune`: the keras-tuner search."""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from fmkeras.config.section import ConfigSection, FieldCheck


@dataclasses.dataclass(frozen=True)
class TuneConfig(ConfigSection):
    """keras-tuner search (`fmkeras tune`): `space` maps config paths (or `augment_strength`) to ranges:
    `{min, max, sampling: log, step}` (ints if both bounds are ints), a list of choices, or a fixed value.
    Results go to `<directory>/<project_name or name>`; an existing search there is resumed unless
    `overwrite`. `algorithm` random|bayesian|hyperband (hyperband: `max_epochs` per trial budget).
    The best trial is retrained on train+val and exported when `retrain`."""
    PATH = "tune"

    algorithm: Literal["random", "bayesian", "hyperband"] = "random"
    objective: str = "val_accuracy"
    max_trials: int = 10
    executions_per_trial: int = 1
    max_epochs: int = 4
    hyperband_factor: int = 3
    directory: str = "tune_results"
    project_name: Optional[str] = None
    overwrite: bool = False
    retrain: bool = True
    space: dict = dataclasses.field(default_factory=dict)

    def check(self, c: FieldCheck):
        for name in ("max_trials", "executions_per_trial", "max_epochs"):
            c.range(name, 1)
        c.range("hyperband_factor", 2)
