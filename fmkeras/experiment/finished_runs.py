"""Finished runs and model files: evaluate them on a data source, export them, convert them to TFLite.

A model is a run directory, a .keras file or an exported SavedModel version; its task (image, multi-label
image or text) comes from fmkeras.tasks, so the same functions serve all of them. `fmkeras evaluate` and
`fmkeras export` are these functions behind flags.

Example:
    report = evaluate("runs/cnn_fashion-20261206-101500", tta="flip")
    export("runs/cnn_fashion-20261206-101500", RunConfig())
"""
from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np

from fmkeras.config import AugmentConfig, DataConfig, RunConfig, from_dict, to_dict
from fmkeras.errors import ConfigError, DataError
from fmkeras.evaluate import write_json
from fmkeras.experiment.run import export_model
from fmkeras.experiment.run_dir import MODEL_FILE, finished_run, is_run_dir, run_config
from fmkeras.model_files.keras_file import load_keras_model
from fmkeras.tasks import check_command, task_for_export, task_for_model, task_for_source


@dataclasses.dataclass
class LoadedModel:
    """A model ready to predict: `predict(x)` -> probabilities, its task, its input shape (None: a SavedModel,
    which prepares its own inputs), the run config (run directories only) and the class names if known."""
    predict: object
    task: object
    input_shape: tuple = None
    run_cfg: RunConfig = None
    class_names: list = None
    keras_model: object = None


def load_model(path: str, trust: bool = False) -> LoadedModel:
    """A run directory, .keras file or SavedModel version directory, loaded for prediction."""
    if is_run_dir(path) or (path.endswith(".keras") and os.path.isfile(path)):
        run_cfg = run_config(path) if is_run_dir(path) else None
        model = load_keras_model(os.path.join(path, MODEL_FILE) if run_cfg else path, trust)
        class_names = _run_class_names(path) if run_cfg else None
        return LoadedModel(lambda x: model(x, training=False), task_for_model(model), tuple(model.input_shape[1:]),
                           run_cfg, class_names, model)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        import tensorflow as tf

        from fmkeras.export.saved_model import load_metadata
        metadata = load_metadata(path)
        loaded = tf.saved_model.load(path)
        task = task_for_export(metadata)
        if task.modality == "text":
            serve_text = loaded.signatures["serving_default"]
            return LoadedModel(lambda x: serve_text(text=x)["probabilities"], task, None, None,
                               metadata["class_names"])
        from fmkeras.data.decode import to_channels
        serve, channels = loaded.signatures["serve_pixels"], metadata["image_shape"][2]
        return LoadedModel(lambda x: serve(pixels=tf.cast(tf.round(to_channels(tf.convert_to_tensor(x), channels)),
                                                          tf.uint8))["probabilities"],
                           task, None, None, metadata["class_names"])
    raise DataError(f"--model={path} is not a run directory, a .keras file or a SavedModel directory")


def load_model_for_eval(path: str):
    """(predict_fn, input shape or None, run config or None) of a run dir, .keras file or SavedModel."""
    loaded = load_model(path)
    return loaded.predict, loaded.input_shape, loaded.run_cfg


def _run_class_names(run_dir: str):
    import json
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(path):
        return None
    with open(path) as fh:
        return json.load(fh).get("class_names")


_INPUTS = {"image": "images", "text": "texts"}


def _evaluation_data(loaded: LoadedModel, data_cfg: DataConfig, what: str):
    """(task, source, datasets) of `data_cfg` for `loaded`, checked to be of the model's task."""
    data_cfg = data_cfg or (loaded.run_cfg.data if loaded.run_cfg else None)
    if data_cfg is None:
        raise ConfigError(f"{what} needs --data when --model is not a run directory")
    task = task_for_source(data_cfg.source)
    if task is not loaded.task:
        raise DataError(f"the model takes {_INPUTS[loaded.task.modality]} but data.source={data_cfg.source!r} "
                        f"holds {_INPUTS[task.modality]}")
    shape = loaded.input_shape
    if task.modality == "image" and shape and len(shape) == 3 and not data_cfg.image_size:
        data_cfg = from_dict(DataConfig, {**to_dict(data_cfg), "image_size": list(shape[:2]), "channels": shape[2]})
    cfg = dataclasses.replace(loaded.run_cfg or RunConfig(), data=data_cfg)
    source = task.load_source(cfg)
    return task, source, task.build_datasets(source, cfg, batch_size=256, deterministic=True)


def _out_dir(model_path: str, loaded: LoadedModel, out_dir: str, default: str) -> str:
    return out_dir or (model_path if loaded.run_cfg else os.path.join("runs", default))


def evaluate(model_path: str, data_cfg: DataConfig = None, out_dir: str = None, tta=None) -> dict:
    """Evaluates a model on a data source's test split (else validation); writes <out_dir>/eval/.

    tta: "flip" or a number of views (fmkeras.evaluate.tta, images only): also scores the test-time-augmented
    predictions and reports them under "tta" beside the plain ones.
    """
    if tta is not None:
        from fmkeras.evaluate.tta import tta_views
        try:
            tta_views(tta)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    loaded = load_model(model_path)
    task, source, data = _evaluation_data(loaded, data_cfg, "evaluate")
    if tta is not None and task.modality != "image":
        raise ConfigError(f"--tta augments images; {model_path} is a {task.modality} classifier")
    if tta is not None:
        check_command(task, "evaluate --tta", source.name)
    dataset = data.test if data.test is not None else data.val
    out_dir = _out_dir(model_path, loaded, out_dir, "evaluate")
    report = task.evaluate(loaded.predict, dataset, data.class_names, os.path.join(out_dir, "eval"),
                           validation=data.val if dataset is not data.val else None, tta=tta)
    write_json(os.path.join(out_dir, "eval", "report.json"), {"model": model_path, "data": source.name, **report})
    print(task.summary(report))
    print(f"report: {os.path.join(out_dir, 'eval')}")
    return report


def evaluate_ensemble(model_paths: list, data_cfg: DataConfig = None, out_dir: str = None) -> dict:
    """Averages the predictions of several run dirs / .keras files / SavedModels (of one task); scores each
    and the mean on the data's test split."""
    from fmkeras.evaluate.ensemble import adapt_input, ensemble_report
    loaded = [load_model(path) for path in model_paths]
    first = next((m for m in loaded if m.run_cfg is not None), loaded[0])
    data_cfg = data_cfg or (first.run_cfg.data if first.run_cfg else None)
    if data_cfg is None:
        raise ConfigError("evaluate --ensemble needs --data when no member is a run directory")
    task = task_for_source(data_cfg.source)
    check_command(task, "evaluate --ensemble", data_cfg.source)
    for path, member in zip(model_paths, loaded):
        if member.task is not task:
            raise DataError(f"model {path} takes {_INPUTS[member.task.modality]} but the data {data_cfg.source!r} "
                            f"holds {_INPUTS[task.modality]}")
    _, source, data = _evaluation_data(first, data_cfg, "evaluate --ensemble")
    for path, member in zip(model_paths, loaded):
        if member.class_names is not None and list(member.class_names) != list(data.class_names):
            raise DataError(f"model {path} was trained on classes {', '.join(member.class_names)}; the data has "
                            f"{', '.join(data.class_names)}")
    predictors = [(path, adapt_input(m.predict, m.input_shape) if m.input_shape and len(m.input_shape) == 3
                   else m.predict) for path, m in zip(model_paths, loaded)]
    dataset = data.test if data.test is not None else data.val
    report = {"models": list(model_paths), "data": source.name,
              **ensemble_report(predictors, dataset, data.class_names)}
    out_dir = out_dir or os.path.join("runs", "ensemble")
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "ensemble_report.json"), report)
    for member in report["members"]:
        print(f"{member['model']}: accuracy {member['accuracy']}")
    units = _INPUTS[task.modality]
    print(f"ensemble of {len(model_paths)}: accuracy {report['ensemble']['accuracy']}  "
          f"({report['num_examples']} {units})")
    print(f"report: {os.path.join(out_dir, 'ensemble_report.json')}")
    return report


def export(run_dir: str, cfg: RunConfig, trust: bool = False) -> dict:
    """Exports the model of a finished run directory as the next SavedModel version."""
    run_cfg, metrics = finished_run(run_dir)
    model = load_keras_model(os.path.join(run_dir, MODEL_FILE), trust)
    task = task_for_model(model)
    export_cfg = cfg.export if cfg.export.model_name or cfg.export.base_dir != "saved_models" else run_cfg.export
    merged = RunConfig(name=run_cfg.name, export=export_cfg, data=run_cfg.data, model=run_cfg.model)
    shape = tuple(metrics["image_shape"]) if metrics.get("image_shape") else None
    result = export_model(model, merged, metrics["class_names"], shape, task, evaluation=metrics.get("test"))
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
    run_cfg, _ = finished_run(run_dir)
    task = task_for_source(run_cfg.data.source)
    check_command(task, "export --format=tflite", run_cfg.data.source)
    model = load_keras_model(os.path.join(run_dir, MODEL_FILE), trust)
    cfg = dataclasses.replace(run_cfg, data=dataclasses.replace(run_cfg.data, augment=AugmentConfig()))
    source = task.load_source(cfg)
    data = task.build_datasets(source, cfg, batch_size=256, deterministic=True)
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
    if is_run_dir(model_path):
        return os.path.join(model_path, MODEL_FILE)
    if model_path.endswith(".keras") and os.path.isfile(model_path):
        return model_path
    raise DataError(f"--fgsm_epsilon needs gradients: --model={model_path} must be a run directory or a "
                    f".keras file, not a SavedModel")


def robust_evaluate(model_path: str, data_cfg: DataConfig, epsilons) -> list:
    """FGSM-robust test accuracy of a run directory's or .keras file's image model at each epsilon."""
    from fmkeras.evaluate.robust import robust_accuracy
    file = keras_model_file(model_path)
    loaded = load_model(model_path)
    source = (data_cfg or loaded.run_cfg.data).source if (data_cfg or loaded.run_cfg) else file
    check_command(loaded.task, "evaluate --fgsm_epsilon", source)
    out_dir = os.path.join(model_path, "eval") if loaded.run_cfg else os.path.join("runs", "evaluate", "eval")
    _, _, data = _evaluation_data(loaded, data_cfg, "evaluate --fgsm_epsilon")
    dataset = data.test if data.test is not None else data.val
    results = [robust_accuracy(loaded.keras_model, dataset, eps, "fgsm") for eps in epsilons]
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "robust.json"), {"model": model_path, "results": results})
    for r in results:
        print(f"FGSM epsilon {r['epsilon']}: robust accuracy {r['robust_accuracy']} "
              f"(clean {r['clean_accuracy']}, {r['num_examples']} images)")
    return results
