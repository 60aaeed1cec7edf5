"""One run end to end: data -> model -> train -> evaluate -> export, recorded in a run directory.

Run directory: config.json (resolved), model.keras, history.csv, metrics.json (accuracy,
per-class report, timings, skipped inputs), plots/*.png, logs/ (TensorBoard), checkpoints/.

Example:
    report = run_training(load_recipe("cnn_fashion"))
    print(report["run_dir"], report["test"]["accuracy"])
"""
from __future__ import annotations

import datetime
import logging
import os

import keras

from fmkeras.config import RunConfig, to_dict
from fmkeras.data import build_datasets, load_source
from fmkeras.evaluate import evaluate_predictions, plot_history, write_json
from fmkeras.export import export_saved_model
from fmkeras.train import fit, seed_everything
from fmkeras.transfer import build_classifier
from fmkeras.transfer.weight_hashes import write_sha256_sidecar

log = logging.getLogger("fmkeras")
MODEL_FILE = "model.keras"


def make_run_dir(cfg: RunConfig) -> str:
    """`cfg.run_dir` if given (reused, so BackupAndRestore can resume), else runs/<name>-<time>."""
    if cfg.run_dir:
        path = cfg.run_dir
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = os.path.join(cfg.run_root, f"{cfg.name}-{stamp}")
        suffix = 1
        while os.path.exists(path):
            suffix += 1
            path = os.path.join(cfg.run_root, f"{cfg.name}-{stamp}-{suffix}")
    os.makedirs(os.path.join(path, "plots"), exist_ok=True)
    return path


def export_model(model: keras.Model, cfg: RunConfig, class_names, image_shape) -> dict:
    """Exports the next SavedModel version under <export.base_dir>/<model_name>."""
    name = cfg.export.model_name or cfg.name
    base = os.path.join(cfg.export.base_dir, name)
    version, path = export_saved_model(model, base, class_names, image_shape,
                                       extra_metadata={"run_name": cfg.name, "backbone": cfg.model.backbone})
    return {"model_name": name, "version": version, "path": path}


def run_training(cfg: RunConfig) -> dict:
    """Trains `cfg`, evaluates on the test split, writes the run directory and exports."""
    seed_everything(cfg.train)
    # Resolve data and model first: a bad source or backbone fails before anything is written.
    source = load_source(cfg.data)
    data = build_datasets(source, cfg.data, cfg.train.batch_size)
    model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    run_dir = make_run_dir(cfg)
    write_json(os.path.join(run_dir, "config.json"), to_dict(cfg))
    for path, reason in data.skipped:
        log.warning("skipped %s: %s", path, reason)
    result = fit(model, data, cfg.train, run_dir)
    model.save(os.path.join(run_dir, MODEL_FILE))
    write_sha256_sidecar(os.path.join(run_dir, MODEL_FILE))  # `--weights=`/`evaluate` check it on load
    plot_history(result.history, os.path.join(run_dir, "plots", "training_curves.png"))
    test_set, split = (data.test, "test") if data.test is not None else (data.val, "validation")
    test = evaluate_predictions(lambda x: model(x, training=False), test_set, data.class_names,
                                os.path.join(run_dir, "plots"), prefix=split) if test_set is not None else None
    report = {
        "run_dir": run_dir, "name": cfg.name, "data": source.name, "evaluated_on": split,
        "class_names": list(data.class_names), "image_shape": list(data.image_shape),
        "num_train": data.num_train, "num_val": data.num_val, "num_test": data.num_test,
        "params": model.count_params(), "train_seconds": round(result.seconds, 2), "epochs": result.epochs,
        "history": result.history, "stopped_early": result.stopped_early,
        "skipped": [{"path": p, "reason": r} for p, r in data.skipped], "skipped_count": len(data.skipped),
        "resume": result.resume,
        "test": test,
    }
    if cfg.export.enabled:
        report["export"] = export_model(model, cfg, data.class_names, data.image_shape)
    write_json(os.path.join(run_dir, "metrics.json"), report)
    return report
