"""The library calls behind `fmkeras evaluate` and `fmkeras export` (no flag parsing here)."""
from __future__ import annotations

import json
import os

import keras

from fmkeras.config import DataConfig, RunConfig, from_dict, to_dict
from fmkeras.data import build_datasets, load_source
from fmkeras.errors import ConfigError, DataError
from fmkeras.evaluate import evaluate_predictions, write_json
from fmkeras.experiment import MODEL_FILE, export_model


def _run_config(run_dir: str) -> RunConfig:
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise DataError(f"{run_dir} is not an fmkeras run directory (no config.json)")
    with open(path) as fh:
        return from_dict(RunConfig, json.load(fh))


def load_model_for_eval(path: str):
    """Returns (predict_fn, image_shape or None, run config or None) for a run dir, .keras or SavedModel."""
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, MODEL_FILE)):
        model = keras.saving.load_model(os.path.join(path, MODEL_FILE), safe_mode=True)
        return (lambda x: model(x, training=False)), tuple(model.input_shape[1:]), _run_config(path)
    if path.endswith(".keras") and os.path.isfile(path):
        model = keras.saving.load_model(path, safe_mode=True)
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
    model = keras.saving.load_model(os.path.join(run_dir, MODEL_FILE), safe_mode=True)
    export_cfg = cfg.export if cfg.export.model_name or cfg.export.base_dir != "saved_models" else run_cfg.export
    merged = RunConfig(name=run_cfg.name, export=export_cfg)
    result = export_model(model, merged, metrics["class_names"], tuple(metrics["image_shape"]))
    print(f"exported: {result['path']}")
    return result


def keras_model_file(model_path: str) -> str:
    """The .keras file of a run directory or .keras path; DataError for anything else (e.g. a SavedModel)."""
    if os.path.isdir(model_path) and os.path.isfile(os.path.join(model_path, MODEL_FILE)):
        return os.path.join(model_path, MODEL_FILE)
    if model_path.endswith(".keras") and os.path.isfile(model_path):
        return model_path
    raise DataError(f"--fgsm_epsilon needs gradients: --model={model_path} must be a run directory or a "
                    f".keras file, not a SavedModel")


def robust_evaluate(model_path: str, data_cfg: DataConfig, epsilons) -> list:
    """FGSM-robust test accuracy of a run directory's or .keras file's model at each epsilon."""
    from fmkeras.evaluate.robust import robust_accuracy
    file = keras_model_file(model_path)
    run_cfg = _run_config(model_path) if file != model_path else None
    out_dir = os.path.join(model_path, "eval") if run_cfg else os.path.join("runs", "evaluate", "eval")
    model = keras.saving.load_model(file, safe_mode=True)
    data_cfg = data_cfg or run_cfg.data
    image_shape = tuple(model.input_shape[1:])
    if not data_cfg.image_size:
        data_cfg = from_dict(DataConfig, {**to_dict(data_cfg), "image_size": list(image_shape[:2]),
                                          "channels": image_shape[2]})
    data = build_datasets(load_source(data_cfg), data_cfg, batch_size=256)
    dataset = data.test if data.test is not None else data.val
    results = [robust_accuracy(model, dataset, eps, "fgsm") for eps in epsilons]
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "robust.json"), {"model": model_path, "results": results})
    for r in results:
        print(f"FGSM epsilon {r['epsilon']}: robust accuracy {r['robust_accuracy']} "
              f"(clean {r['clean_accuracy']}, {r['num_examples']} images)")
    return results
