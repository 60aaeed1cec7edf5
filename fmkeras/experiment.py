"""One run end to end: data -> model -> train -> evaluate -> export, recorded in a run directory.

Distribution (`distribute.strategy`): the model is built and fit under the selected tf.distribute strategy;
multi-worker jobs train with fmkeras.train.distributed_loop, and tasks other than the chief write to
<run_dir>/workers/<task>/.

Run directory: config.json (resolved), model.keras, history.csv, metrics.json (accuracy,
per-class report, timings, skipped inputs), plots/*.png, logs/ (TensorBoard), checkpoints/.

Example:
    report = run_training(load_recipe("cnn_fashion"))
    print(report["run_dir"], report["test"]["accuracy"])
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import os

import keras

from fmkeras.atomic_files import write_with
from fmkeras.backbones import get_backbone
from fmkeras.config import RunConfig, to_dict
from fmkeras.data import build_datasets, load_source
from fmkeras.evaluate import evaluate_predictions, plot_history, write_json
from fmkeras.data.text import is_text_source
from fmkeras.export import export_saved_model, export_text_saved_model
from fmkeras.train import seed_everything
from fmkeras.train.distributed_loop import check_distributed_settings, fit_distributed
from fmkeras.train.strategy import (build_strategy, is_chief, needs_custom_loop, scale_for_replicas, shard_dataset,
                                    strategy_name, task_label)
from fmkeras.transfer import build_classifier, fit_stages, trainable_parameter_count
from fmkeras.transfer.weight_hashes import write_sha256_sidecar

log = logging.getLogger("fmkeras")
MODEL_FILE = "model.keras"


def make_run_dir(cfg: RunConfig) -> str:
    """`cfg.run_dir` if given (reused, so training resumes from its checkpoints), else runs/<name>-<time>."""
    if cfg.run_dir:
        path = cfg.run_dir
    else:
        path = _claim_run_dir(cfg.run_root, cfg.name)
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


def export_model(model: keras.Model, cfg: RunConfig, class_names, image_shape) -> dict:
    """Exports the next SavedModel version under <export.base_dir>/<model_name> (text models take strings)."""
    name = cfg.export.model_name or cfg.name
    base = os.path.join(cfg.export.base_dir, name)
    metadata = {"run_name": cfg.name, "backbone": cfg.model.backbone}
    if model.inputs[0].dtype == "string":
        version, path = export_text_saved_model(model, base, class_names, extra_metadata=metadata)
    else:
        version, path = export_saved_model(model, base, class_names, image_shape, extra_metadata=metadata,
                                           crop=cfg.data.center_crop, tta=cfg.export.tta)
    return {"model_name": name, "version": version, "path": path}


def with_image_size(cfg: RunConfig, source) -> RunConfig:
    """Images of different sizes and no `data.image_size`: use the size the backbone runs at."""
    if cfg.data.image_size or source.image_shape is not None:
        return cfg
    size = tuple(cfg.model.input_size or get_backbone(cfg.model.backbone).default_input_size)
    log.info("%s: images differ in size; resizing them to %s (model.input_size or the backbone's default; "
             "set data.image_size to change it)", source.name, size)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image_size=size))


def run_training(cfg: RunConfig) -> dict:
    """Trains `cfg`, evaluates on the test split, writes the run directory and exports."""
    if is_text_source(cfg.data.source):
        from fmkeras.text_experiment import run_text_training
        return run_text_training(cfg)
    seed_everything(cfg.train)
    strategy = build_strategy(cfg.distribute)
    if needs_custom_loop(strategy):
        check_distributed_settings(cfg.train, cfg.data.balance)
    # Resolve data and model first: a bad source or backbone fails before anything is written.
    source = load_source(cfg.data)
    cfg = with_image_size(cfg, source)  # before config.json is written, so exports rebuild the same data
    given, cfg = cfg, scale_for_replicas(cfg, strategy.num_replicas_in_sync)  # global batch, scaled LRs
    # Parallel stages may hand out elements in completion order unless the run must be reproducible.
    data = build_datasets(source, cfg.data, cfg.train.batch_size, deterministic=cfg.train.deterministic)
    data.train, data.val = (shard_dataset(ds, cfg.distribute.shard_policy) for ds in (data.train, data.val))
    with strategy.scope():
        model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    run_dir = shared_dir = make_run_dir(cfg)
    if not is_chief(strategy):  # other workers of a multi-worker job keep their files apart
        cfg = dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, enabled=False))
        worker_dir = os.path.join(shared_dir, "workers", task_label(strategy))
        run_dir = make_run_dir(dataclasses.replace(cfg, run_dir=worker_dir))
    write_json(os.path.join(run_dir, "config.json"), to_dict(given))
    for path, reason in data.skipped:
        log.warning("skipped %s: %s", path, reason)
    if needs_custom_loop(strategy):
        result = fit_distributed(model, data, cfg.train, run_dir, strategy,
                                 backup_dir=os.path.join(shared_dir, "backup"),
                                 backup_every_steps=cfg.distribute.backup_every_steps)
    else:
        with strategy.scope():
            result = fit_stages(model, data, cfg, run_dir)
    write_with(model.save, os.path.join(run_dir, MODEL_FILE))  # a crash never leaves half a model.keras
    write_sha256_sidecar(os.path.join(run_dir, MODEL_FILE))  # `--weights=`/`evaluate` check it on load
    plot_history(result.history, os.path.join(run_dir, "plots", "training_curves.png"))
    test_set, split = (data.test, "test") if data.test is not None else (data.val, "validation")
    test = evaluate_predictions(lambda x: model(x, training=False), test_set, data.class_names,
                                os.path.join(run_dir, "plots"), prefix=split,
                                gradcam_model=model) if test_set is not None else None
    report = {
        "run_dir": run_dir, "name": cfg.name, "data": source.name, "evaluated_on": split,
        "class_names": list(data.class_names), "image_shape": list(data.image_shape),
        "num_train": data.num_train, "num_val": data.num_val, "num_test": data.num_test,
        "params": model.count_params(), "trainable_params": trainable_parameter_count(model),
        "lora_rank": cfg.model.lora_rank, "train_seconds": round(result.seconds, 2), "epochs": result.epochs,
        "history": result.history, "stages": getattr(result, "stages", []), "stopped_early": result.stopped_early,
        "skipped": [{"path": p, "reason": r} for p, r in data.skipped], "skipped_count": len(data.skipped),
        "resume": getattr(result, "resume", None) or {"enabled": False},  # the multi-worker loop has its own backup
        "test": test,
        "distribute": {"strategy": strategy_name(strategy), "replicas": strategy.num_replicas_in_sync,
                       "task": task_label(strategy), "global_batch_size": cfg.train.batch_size,
                       "learning_rate": cfg.train.learning_rate,
                       "resumed_from_step": getattr(result, "resumed_from_step", 0),
                       "steps_run": getattr(result, "steps_run", None),
                       "global_step": getattr(result, "global_step", None)},
    }
    if cfg.train.prune_sparsity:
        from fmkeras.train.pruning import sparsity_report
        report["pruning"] = {"target": cfg.train.prune_sparsity, **sparsity_report(model)}
    if cfg.export.enabled:
        report["export"] = export_model(model, cfg, data.class_names, data.image_shape)
    write_json(os.path.join(run_dir, "metrics.json"), report)
    return report
