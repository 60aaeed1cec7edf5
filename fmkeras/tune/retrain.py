"""Retrain the best trial's configuration on train+val, evaluate on test and export it.

Text searches retrain through `fmkeras train`'s text path (fmkeras.text_experiment), so the best
configuration gets its full `model.ensemble` and `text.linear_member`; the linear member's L2 strength,
normally picked on the validation split, is picked on the search's split before it is merged away."""
from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from fmkeras.atomic_files import write_with
from fmkeras.config import RunConfig, apply_overrides, to_dict
from fmkeras.data import build_datasets
from fmkeras.data.pipeline import train_val_indices
from fmkeras.data.text_pipeline import build_text_datasets
from fmkeras.evaluate import evaluate_predictions, plot_history, write_json
from fmkeras.experiment import MODEL_FILE, export_model, make_run_dir
from fmkeras.text_experiment import train_text_source
from fmkeras.train import seed_everything
from fmkeras.transfer import build_classifier
from fmkeras.transfer.finetune import fit_stages
from fmkeras.transfer.linear_text import fit_linear_text_classifier
from fmkeras.transfer.weight_hashes import write_sha256_sidecar

log = logging.getLogger("fmkeras")


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
    merged = {"data.validation_split": 0.0, "data.limit_train": None, "run_dir": run_dir}
    if source.kind == "text":
        cfg = linear_l2_on_search_split(cfg, source)
        epochs = {"train.epochs": total_epochs} if total_epochs else {}
        return train_text_source(apply_overrides(cfg, {**merged, **epochs}), train_plus_val(source, cfg.data))
    source = train_plus_val(source, cfg.data)
    cfg = apply_overrides(cfg, merged)
    seed_everything(cfg.train)
    data = build_datasets(source, cfg.data, cfg.train.batch_size)
    model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    run_dir = make_run_dir(cfg)
    write_json(os.path.join(run_dir, "config.json"), to_dict(cfg))
    start = time.perf_counter()
    history = fit_stages(model, data, cfg, run_dir, total_epochs=total_epochs).history
    seconds = time.perf_counter() - start
    write_with(model.save, os.path.join(run_dir, MODEL_FILE))  # a crash never leaves half a model.keras
    write_sha256_sidecar(os.path.join(run_dir, MODEL_FILE))
    plot_history(history, os.path.join(run_dir, "plots", "training_curves.png"))
    test = (evaluate_predictions(lambda x: model(x, training=False), data.test, data.class_names,
                                 os.path.join(run_dir, "plots"), prefix="test") if data.test is not None else None)
    report = {"run_dir": run_dir, "num_train": data.num_train, "history": history, "train_seconds": round(seconds, 2),
              "test": test}
    if cfg.export.enabled:
        report["export"] = export_model(model, cfg, data.class_names, data.image_shape)
    write_json(os.path.join(run_dir, "metrics.json"), report)
    return report


def linear_l2_on_search_split(cfg: RunConfig, source) -> RunConfig:
    """`cfg` with `text.linear_l2` narrowed to the value the search's validation split picks, when the
    text run fits a linear member over several values (the retrain has no validation split to pick on)."""
    if not cfg.text.linear_member or len(cfg.text.linear_l2) == 1:
        return cfg
    data = build_text_datasets(source, cfg.data, cfg.train.batch_size)
    if not data.num_val:
        return cfg
    _, facts = fit_linear_text_classifier(cfg.text, data.train_texts, data.train_labels, data.val_texts,
                                          data.val_labels, len(data.class_names))
    log.info("linear member: l2 %g picked on the search's validation split %s", facts["l2"],
             facts["val_accuracy_by_l2"])
    return apply_overrides(cfg, {"text.linear_l2": [facts["l2"]]})
