"""Retrain the best trial's configuration on train+val, evaluate on test and export it."""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from fmkeras.config import RunConfig, apply_overrides, to_dict
from fmkeras.data import build_datasets
from fmkeras.data.pipeline import split_indices
from fmkeras.evaluate import evaluate_predictions, plot_history, write_json
from fmkeras.experiment import MODEL_FILE, export_model, make_run_dir
from fmkeras.train import seed_everything
from fmkeras.transfer import build_classifier
from fmkeras.transfer.finetune import fit_stages


def train_plus_val(source, data_cfg):
    """`source` reduced to exactly the training + validation images the search used (limits applied)."""
    train_idx, val_idx = split_indices(len(source.y_train), data_cfg.validation_split, data_cfg.seed)
    if data_cfg.limit_train:  # the same cut as fmkeras.data.pipeline.build_datasets
        train_idx = train_idx[: data_cfg.limit_train]
        if len(val_idx):
            val_idx = val_idx[: max(1, int(round(data_cfg.limit_train * data_cfg.validation_split)))]
    keep = np.concatenate([train_idx, val_idx])
    return dataclasses.replace(source, x_train=source.x_train[keep], y_train=source.y_train[keep])


def retrain_best(cfg: RunConfig, source, run_dir: str, total_epochs: int = None) -> dict:
    """Trains `cfg` on the search's training + validation images (no validation split) in `run_dir`,
    evaluates on the test split and exports. Returns the run report."""
    source = train_plus_val(source, cfg.data)
    cfg = apply_overrides(cfg, {"data.validation_split": 0.0, "data.limit_train": None, "run_dir": run_dir})
    seed_everything(cfg.train)
    data = build_datasets(source, cfg.data, cfg.train.batch_size)
    model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    run_dir = make_run_dir(cfg)
    write_json(os.path.join(run_dir, "config.json"), to_dict(cfg))
    start = time.perf_counter()
    history = fit_stages(model, data, cfg, run_dir, total_epochs=total_epochs).history
    seconds = time.perf_counter() - start
    model.save(os.path.join(run_dir, MODEL_FILE))
    plot_history(history, os.path.join(run_dir, "plots", "training_curves.png"))
    test = (evaluate_predictions(lambda x: model(x, training=False), data.test, data.class_names,
                                 os.path.join(run_dir, "plots"), prefix="test") if data.test is not None else None)
    report = {"run_dir": run_dir, "num_train": data.num_train, "history": history, "train_seconds": round(seconds, 2),
              "test": test}
    if cfg.export.enabled:
        report["export"] = export_model(model, cfg, data.class_names, data.image_shape)
    write_json(os.path.join(run_dir, "metrics.json"), report)
    return report
