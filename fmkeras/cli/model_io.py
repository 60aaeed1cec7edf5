"""The library calls behind `fmkeras evaluate` and `fmkeras export` (no flag parsing here)."""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile

import numpy as np

from fmkeras.config import AugmentConfig, DataConfig, RunConfig, from_dict, to_dict
from fmkeras.data import build_datasets, load_source
from fmkeras.errors import ConfigError, DataError
from fmkeras.data.text import is_text_source, load_text_source
from fmkeras.data.text_pipeline import build_text_datasets
from fmkeras.evaluate import evaluate_predictions, evaluate_text_predictions, write_json
from fmkeras.experiment import MODEL_FILE, export_model
from fmkeras.export.loading import load_keras_model


def _run_config(run_dir: str) -> RunConfig:
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise DataError(f"{run_dir} is not an fmkeras run directory (no config.json)")
    with open(path) as fh:
        return from_dict(RunConfig, json.load(fh))


def _load(path: str):
    """A .keras file, checked against its .sha256 sidecar if any, inspected, then loaded in safe mode."""
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
        if "serve_pixels" not in loaded.signatures:  # a text classifier: its only signature takes strings
            serve_text = loaded.signatures["serving_default"]
            return (lambda x: serve_text(text=x)["probabilities"]), None, None
        serve = loaded.signatures["serve_pixels"]
        return (lambda x: serve(pixels=tf.cast(tf.round(x), tf.uint8))["probabilities"]), None, None
    raise DataError(f"--model={path} is not a run directory, a .keras file or a SavedModel directory")


def evaluate(model_path: str, data_cfg: DataConfig = None, out_dir: str = None, tta=None) -> dict:
    """Evaluates a trained model on a data source's test split; writes metrics and plots.

    tta: "flip" or a number of views (fmkeras.evaluate.tta): also scores the test-time-augmented
    predictions and reports them under "tta" beside the plain ones.
    """
    if tta is not None:
        from fmkeras.evaluate.tta import tta_views
        try:
            tta_views(tta)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    predict, image_shape, run_cfg = load_model_for_eval(model_path)
    data_cfg = data_cfg or (run_cfg.data if run_cfg else None)
    if data_cfg is None:
        raise ConfigError("evaluate needs --data when --model is not a run directory")
    if is_text_source(data_cfg.source):
        return evaluate_text(predict, data_cfg, run_cfg, model_path, out_dir)
    if image_shape and not data_cfg.image_size:
        data_cfg = from_dict(DataConfig, {**to_dict(data_cfg), "image_size": list(image_shape[:2]),
                                          "channels": image_shape[2]})
    source = load_source(data_cfg)
    data = build_datasets(source, data_cfg, batch_size=256)
    dataset = data.test if data.test is not None else data.val
    out_dir = out_dir or (model_path if os.path.isdir(model_path) and run_cfg else os.path.join(
        "runs", "evaluate"))
    report = evaluate_predictions(predict, dataset, data.class_names, os.path.join(out_dir, "eval"))
    if tta is not None:
        from fmkeras.evaluate.metrics import classification_report, predict_dataset
        from fmkeras.evaluate.tta import tta_predict, tta_views
        probabilities, labels, _ = predict_dataset(tta_predict(predict, tta), dataset)
        augmented = classification_report(probabilities, labels, data.class_names)
        report["tta"] = {"mode": str(tta), "views": tta_views(tta), "accuracy": augmented["accuracy"],
                         "macro_f1": augmented["macro_f1"], "accuracy_without_tta": report["accuracy"]}
    write_json(os.path.join(out_dir, "eval", "report.json"), {"model": model_path, "data": source.name, **report})
    print(f"accuracy: {report['accuracy']}  macro F1: {report['macro_f1']}  ({report['num_examples']} images)")
    if tta is not None:
        print(f"with TTA ({tta}, {report['tta']['views']} views): accuracy {report['tta']['accuracy']}  "
              f"macro F1: {report['tta']['macro_f1']}")
    print(f"report: {os.path.join(out_dir, 'eval')}")
    return report


def _member(path: str):
    """(predict_fn taking any batch, class names or None, run config or None, "image" or "text") of one
    ensemble member."""
    import tensorflow as tf
    from fmkeras.data.decode import to_channels
    from fmkeras.evaluate.ensemble import adapt_input
    from fmkeras.export.saved_model import load_metadata
    predict, image_shape, run_cfg = load_model_for_eval(path)
    class_names = None
    if run_cfg is not None and os.path.isfile(os.path.join(path, "metrics.json")):
        with open(os.path.join(path, "metrics.json")) as fh:
            class_names = json.load(fh).get("class_names")
    if image_shape is None:  # a SavedModel: serve_pixels resizes itself but needs its own channel count
        metadata = load_metadata(path)
        if metadata.get("modality") == "text":
            return predict, metadata["class_names"], None, "text"
        class_names, channels = metadata["class_names"], metadata["image_shape"][2]
        return (lambda x, f=predict: f(to_channels(tf.convert_to_tensor(x), channels))), class_names, None, "image"
    if image_shape == ():  # one string per example: a text classifier
        return predict, class_names, run_cfg, "text"
    return adapt_input(predict, image_shape), class_names, run_cfg, "image"


def evaluate_ensemble(model_paths: list, data_cfg: DataConfig = None, out_dir: str = None) -> dict:
    """Averages the predictions of several run dirs / .keras files / SavedModels (image or text
    classifiers, not both); scores each and the mean on the data's test split."""
    from fmkeras.evaluate.ensemble import ensemble_report
    loaded = [_member(path) for path in model_paths]
    run_cfg = next((cfg for _, _, cfg, _ in loaded if cfg is not None), None)
    data_cfg = data_cfg or (run_cfg.data if run_cfg else None)
    if data_cfg is None:
        raise ConfigError("evaluate --ensemble needs --data when no member is a run directory")
    text = is_text_source(data_cfg.source)
    for path, (_, _, _, modality) in zip(model_paths, loaded):
        if (modality == "text") != text:
            raise DataError(f"model {path} takes {'texts' if modality == 'text' else 'images'} but the data "
                            f"{data_cfg.source!r} holds {'texts' if text else 'images'}")
    if text:
        source = load_text_source(data_cfg, (run_cfg or RunConfig()).text)
        data = build_text_datasets(source, data_cfg, batch_size=256)
    else:
        source = load_source(data_cfg)
        data = build_datasets(source, data_cfg, batch_size=256)
    for path, (_, names, _, _) in zip(model_paths, loaded):
        if names is not None and list(names) != list(data.class_names):
            raise DataError(f"model {path} was trained on classes {', '.join(names)}; the data has "
                            f"{', '.join(data.class_names)}")
    dataset = data.test if data.test is not None else data.val
    report = {"models": list(model_paths), "data": source.name,
              **ensemble_report([(p, m[0]) for p, m in zip(model_paths, loaded)], dataset, data.class_names)}
    out_dir = out_dir or os.path.join("runs", "ensemble")
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "ensemble_report.json"), report)
    for member in report["members"]:
        print(f"{member['model']}: accuracy {member['accuracy']}")
    print(f"ensemble of {len(model_paths)}: accuracy {report['ensemble']['accuracy']}  "
          f"({report['num_examples']} {'texts' if text else 'images'})")
    print(f"report: {os.path.join(out_dir, 'ensemble_report.json')}")
    return report


def evaluate_text(predict, data_cfg: DataConfig, run_cfg: RunConfig, model_path: str, out_dir: str = None) -> dict:
    """Evaluates a text classifier (strings in) on a text source's test split."""
    text_cfg = run_cfg.text if run_cfg else RunConfig().text
    data = build_text_datasets(load_text_source(data_cfg, text_cfg), data_cfg, batch_size=256)
    dataset = data.test if data.test is not None else data.val
    out_dir = out_dir or (model_path if os.path.isdir(model_path) and run_cfg else os.path.join("runs", "evaluate"))
    report = evaluate_text_predictions(predict, dataset, data.class_names, os.path.join(out_dir, "eval"))
    write_json(os.path.join(out_dir, "eval", "report.json"), {"model": model_path, "data": data_cfg.source, **report})
    print(f"accuracy: {report['accuracy']}  macro F1: {report['macro_f1']}  ({report['num_examples']} texts)")
    print(f"report: {os.path.join(out_dir, 'eval')}")
    return report


def _finished_run(run_dir: str) -> tuple:
    """(run config, metrics) of a run directory whose training finished."""
    run_cfg = _run_config(run_dir)
    metrics_path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(metrics_path) or not os.path.isfile(os.path.join(run_dir, MODEL_FILE)):
        raise DataError(f"{run_dir} has no finished training (metrics.json and {MODEL_FILE} are written at the end)")
    with open(metrics_path) as fh:
        return run_cfg, json.load(fh)


def export(run_dir: str, cfg: RunConfig, trust: bool = False) -> dict:
    """Exports the model of a finished run directory as the next SavedModel version."""
    run_cfg, metrics = _finished_run(run_dir)
    model = load_keras_model(os.path.join(run_dir, MODEL_FILE), trust)
    export_cfg = cfg.export if cfg.export.model_name or cfg.export.base_dir != "saved_models" else run_cfg.export
    merged = RunConfig(name=run_cfg.name, export=export_cfg, data=run_cfg.data)  # data: the serving crop
    image_shape = tuple(metrics["image_shape"]) if metrics.get("image_shape") else None  # None: text model
    result = export_model(model, merged, metrics["class_names"], image_shape)
    print(f"exported: {result['path']}")
    return result


def _arrays(dataset, limit: int) -> tuple:
    """Up to `limit` (images, labels) from a batched (x, y) dataset, as numpy arrays."""
    images, labels, count = [], [], 0
    for x, y in dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
        count += len(images[-1])
        if count >= limit:
            break
    return np.concatenate(images)[:limit], np.concatenate(labels)[:limit]


def export_tflite(run_dir: str, quantize: str = "none", trust: bool = False, calibration_images: int = 200,
                  out_dir: str = None) -> dict:
    """Converts a finished run's model to TFLite; writes the .tflite and a JSON size/accuracy report.

    int8 is calibrated on `calibration_images` un-augmented training images of the run's data; both
    the float Keras model and the TFLite model are scored on the run's test split.
    """
    from fmkeras.export.tflite import compare_tflite, convert_tflite, variables_bytes
    run_cfg, _ = _finished_run(run_dir)
    model = load_keras_model(os.path.join(run_dir, MODEL_FILE), trust)
    data_cfg = dataclasses.replace(run_cfg.data, augment=AugmentConfig())
    source = load_source(data_cfg)
    data = build_datasets(source, data_cfg, batch_size=256)
    representative = _arrays(data.train, calibration_images)[0] if quantize == "int8" else None
    evaluation = data.test if data.test is not None else data.val
    out_dir = out_dir or os.path.join(run_dir, "tflite")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tflite_bytes = convert_tflite(model, quantize, representative, saved_model_dir=os.path.join(tmp, "float"))
        float_variables = variables_bytes(os.path.join(tmp, "float"))
    path = os.path.join(out_dir, f"model_{quantize}.tflite")
    with open(path, "wb") as fh:
        fh.write(tflite_bytes)
    report = {"run_dir": run_dir, "quantize": quantize, "tflite_path": path, "tflite_bytes": len(tflite_bytes),
              "float_saved_model_variables_bytes": float_variables, "float_params_bytes": 4 * model.count_params(),
              "size_ratio": round(len(tflite_bytes) / float_variables, 4),
              "size_ratio_to_float_params": round(len(tflite_bytes) / (4 * model.count_params()), 4),
              "calibration_images": 0 if representative is None else int(len(representative)), "data": source.name}
    if evaluation is not None:
        images, labels = _arrays(evaluation, 10 ** 9)
        report.update(compare_tflite(model, tflite_bytes, images, labels))
    write_json(os.path.join(out_dir, f"model_{quantize}.json"), report)
    print(f"tflite ({quantize}): {path}  {len(tflite_bytes)} bytes = {report['size_ratio']}x the float variables; "
          f"accuracy {report.get('tflite_accuracy')} vs float {report.get('float_accuracy')}")
    return report


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
    model = load_keras_model(file)
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
