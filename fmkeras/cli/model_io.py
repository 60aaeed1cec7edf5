"""The library calls behind `fmkeras evaluate` and `fmkeras export` (no flag parsing here)."""
from __future__ import annotations

import json
import os

from fmkeras.config import DataConfig, RunConfig, from_dict, to_dict
from fmkeras.data import build_datasets, load_source
from fmkeras.errors import ConfigError, DataError
from fmkeras.evaluate import evaluate_predictions, write_json
from fmkeras.experiment import MODEL_FILE, export_model
from fmkeras.transfer.safe_load import load_keras_model
from fmkeras.transfer.weight_hashes import verify_sidecar


def _run_config(run_dir: str) -> RunConfig:
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise DataError(f"{run_dir} is not an fmkeras run directory (no config.json)")
    with open(path) as fh:
        return from_dict(RunConfig, json.load(fh))


def _load(path: str):
    """A .keras file, checked against its .sha256 sidecar if any, inspected, then loaded in safe mode."""
    verify_sidecar(path)
    return load_keras_model(path)


def load_model_for_eval(path: str):
    """Returns (predict_fn, image_shape or None, run config or None) for a run dir, .keras or SavedModel."""
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, MODEL_FILE)):
        model = _load(os.path.join(path, MODEL_FILE))
        return (lambda x: model(x, training=False)), tuple(model.input_shape[1:]), _run_config(path)
    if path.endswith(".keras") and os.path.isfile(path):
        model = _load(path)
        return (lambda x: model(x, training=False)), tuple(model.input_shape[1:]), None
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        import tensorflow as tf
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures["serve_pixels"]
        return (lambda x: serve(pixels=tf.cast(tf.round(x), tf.uint8))["probabilities"]), None, None
    raise DataError(f"--model={path} is not a run directory, a .keras file or a SavedModel directory")


def evaluate(model_path: str, data_cfg: DataConfig = None, out_dir: str = None) -> dict:
    """Evaluates a trained model on a data source's test split; writes metrics and plots."""
    predict, image_shape, run_cfg = load_model_for_eval(model_path)
    data_cfg = data_cfg or (run_cfg.data if run_cfg else None)
    if data_cfg is None:
        raise ConfigError("evaluate needs --data when --model is not a run directory")
    if image_shape and not data_cfg.image_size:
        data_cfg = from_dict(DataConfig, {**to_dict(data_cfg), "image_size": list(image_shape[:2]),
                                          "channels": image_shape[2]})
    source = load_source(data_cfg)
    data = build_datasets(source, data_cfg, batch_size=256)
    dataset = data.test if data.test is not None else data.val
    out_dir = out_dir or (model_path if os.path.isdir(model_path) and run_cfg else os.path.join(
        "runs", "evaluate"))
    report = evaluate_predictions(predict, dataset, data.class_names, os.path.join(out_dir, "eval"))
    write_json(os.path.join(out_dir, "eval", "report.json"), {"model": model_path, "data": source.name, **report})
    print(f"accuracy: {report['accuracy']}  macro F1: {report['macro_f1']}  ({report['num_examples']} images)")
    print(f"report: {os.path.join(out_dir, 'eval')}")
    return report


def export(run_dir: str, cfg: RunConfig) -> dict:
    """Exports the model of a finished run directory as the next SavedModel version."""
    run_cfg = _run_config(run_dir)
    metrics_path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(metrics_path) or not os.path.isfile(os.path.join(run_dir, MODEL_FILE)):
        raise DataError(f"{run_dir} has no finished training (metrics.json and {MODEL_FILE} are written at the end)")
    with open(metrics_path) as fh:
        metrics = json.load(fh)
    model = _load(os.path.join(run_dir, MODEL_FILE))
    export_cfg = cfg.export if cfg.export.model_name or cfg.export.base_dir != "saved_models" else run_cfg.export
    merged = RunConfig(name=run_cfg.name, export=export_cfg)
    result = export_model(model, merged, metrics["class_names"], tuple(metrics["image_shape"]))
    print(f"exported: {result['path']}")
    return result
