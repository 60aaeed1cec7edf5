"""Retrain the best trial's configuration on train+val, evaluate on test and export it.

The retrain is an ordinary run (fmkeras.experiment.Experiment) on the search's training + validation
examples, so its run directory and metrics.json are those of `fmkeras train` (`fmkeras export
--run_dir=<search>/best` reads them). A text run gets its full `model.ensemble` and `text.linear_member`;
the linear member's L2 strength, normally picked on the validation split, is picked on the search's
split first (the task's `prepare_retrain`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from fmkeras.config import RunConfig, apply_overrides
from fmkeras.data.pipeline import train_val_indices
from fmkeras.experiment import Experiment
from fmkeras.tasks import task_for_source


def train_plus_val(source, data_cfg):
    """`source` reduced to exactly the training + validation examples the search used (limits applied;
    a source's own validation split is appended to its training split)."""
    train_idx, val_idx = train_val_indices(source, data_cfg)
    if val_idx is None:
        x = np.concatenate([source.x_train[train_idx], source.x_val])
        y = np.concatenate([source.y_train[train_idx], source.y_val])
    else:
        keep = np.concatenate([train_idx, val_idx])
        x, y = source.x_train[keep], source.y_train[keep]
    return dataclasses.replace(source, x_train=x, y_train=y, x_val=None, y_val=None)


def retrain_best(cfg: RunConfig, source, run_dir: str, total_epochs: int = None) -> dict:
    """Trains `cfg` on the search's training + validation examples (no validation split) in `run_dir`,
    evaluates on the test split and exports. Returns the run report."""
    cfg = task_for_source(cfg.data.source).prepare_retrain(cfg, source)
    merged = apply_overrides(cfg, {"data.validation_split": 0.0, "data.limit_train": None, "run_dir": run_dir})
    return Experiment(merged, source=train_plus_val(source, cfg.data), total_epochs=total_epochs).run()
