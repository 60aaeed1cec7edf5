"""Run directories: claimed once, never shared; what a finished one holds.

Layout: config.json (the resolved config), model.keras (+ .sha256), history.csv, metrics.json (the run
report, fmkeras.experiment.report), plots/*.png, logs/ (TensorBoard), checkpoints/.
"""
from __future__ import annotations

import datetime
import json
import os

from fmkeras.config import RunConfig, from_dict
from fmkeras.errors import DataError

MODEL_FILE = "model.keras"


def make_run_dir(cfg: RunConfig) -> str:
    """`cfg.run_dir` if given (reused, so training resumes from its checkpoints), else runs/<name>-<time>."""
    path = cfg.run_dir or _claim_run_dir(cfg.run_root, cfg.name)
    os.makedirs(os.path.join(path, "plots"), exist_ok=True)
    return path


def _claim_run_dir(run_root: str, name: str) -> str:
    """Creates runs/<name>-<time>[-n]; mkdir (no exist_ok) is the claim, so two runs started in the same
    second, even in two processes, never share a directory."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(run_root, exist_ok=True)
    for suffix in range(1, 10_000):
        path = os.path.join(run_root, f"{name}-{stamp}" + (f"-{suffix}" if suffix > 1 else ""))
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory for {name} under {run_root}")


def is_run_dir(path: str) -> bool:
    """True for a directory holding a trained model.keras (finished or not)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, MODEL_FILE))


def run_config(run_dir: str) -> RunConfig:
    """The resolved config a run directory was trained with."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise DataError(f"{run_dir} is not an fmkeras run directory (no config.json)")
    with open(path) as fh:
        return from_dict(RunConfig, json.load(fh))


def finished_run(run_dir: str) -> tuple:
    """(run config, metrics) of a run directory whose training finished."""
    cfg = run_config(run_dir)
    metrics_path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(metrics_path) or not os.path.isfile(os.path.join(run_dir, MODEL_FILE)):
        raise DataError(f"{run_dir} has no finished training (metrics.json and {MODEL_FILE} are written at the end)")
    with open(metrics_path) as fh:
        return cfg, json.load(fh)
