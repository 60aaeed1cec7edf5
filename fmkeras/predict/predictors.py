"""Batch prediction on image files: a trained run, .keras file, SavedModel or pretrained preset -> top-k labels.

Files are read, decoded and prepared in tf.data (in parallel) and classified in batches. Every
file gets one row, in the order given: `{"path", "top_k": [{"label", "score"}, ...], "error": None}`,
or `top_k: []` and the reason in `error` for a file that cannot be used (not an image, truncated,
empty, unreadable, or a header declaring more pixels than `max_pixels`, refused before decoding).
A multi-label classifier's rows also have `labels`: every class whose score reaches its threshold (the
per-class thresholds its run picked on the validation split, as its SavedModel and server apply them).

Images are prepared with the ops training used (fmkeras.data.decode): a run's own
`data.center_crop` and input size; a preset's ImageNet view (central 0.875 of the shorter side,
resized to 224). A SavedModel gets the encoded bytes and prepares them in its own serving graph.
Loading reuses export's loaders and format (safe .keras loading, SavedModel metadata), as serve does.

Example:
    predictor = load_predictor("preset:efficientnet_lite0")
    rows = predict_files(predictor, find_images(["photos/"]), top_k=5)
    rows[0]["top_k"][0]   # -> {"label": "ant", "score": 0.93}
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from fmkeras.data.decode import center_crop, decode_image, resize_uint8
from fmkeras.data.file_check import DEFAULT_MAX_PIXELS, check_image_files, oversized
from fmkeras.data.image_folder import IMAGE_EXTENSIONS
from fmkeras.errors import DataError
from fmkeras.tasks import task_for_export, task_for_model

log = logging.getLogger("fmkeras")
PRESET_PREFIX = "preset:"
PRESET_CROP = 0.875  # the usual ImageNet evaluation view: 94% of hymenoptera val in the top 5 vs 88% squashed


@dataclasses.dataclass(frozen=True)
class Predictor:
    """A loaded classifier and how to feed it image files.

    takes: "pixels" (float32 batches at `image_shape`, prepared here with `crop`) or "bytes"
        (encoded files; a SavedModel decodes and prepares them in its own graph).
    predict_batch: a batch of pixels or bytes -> numpy probabilities (N, len(class_names)).
    """
    name: str
    class_names: tuple
    image_shape: tuple
    takes: str
    predict_batch: Callable
    crop: Optional[float] = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    model: Optional[object] = None  # the Keras classifier behind predict_batch, when there is one (Grad-CAM)
    thresholds: Optional[tuple] = None  # multi-label: per-class score cuts; None for one class per image


def find_images(paths) -> list:
    """Files given directly (any name), plus the image files under each folder, recursively and sorted.

    A path that does not exist is kept, so it gets an error row instead of vanishing.
    """
    found = []
    for path in paths:
        if not os.path.isdir(path):
            found.append(path)
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(os.path.join(root, name) for name in sorted(files)
                         if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS))
    return found


def _keras_predictor(name: str, model, class_names, crop, max_pixels: int, thresholds=None) -> Predictor:
    task = task_for_model(model)
    if task.modality != "image":
        raise DataError(f"--model={name} is a text classifier; predict takes image files")
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or None in shape:
        raise DataError(f"--model={name} takes inputs of shape {shape}; predict needs a fixed (H, W, C) image size")
    classes = int(model.output_shape[-1])
    if class_names is None:
        log.warning("%s: no class names beside the model (no run directory); labels are class indices", name)
        class_names = [str(i) for i in range(classes)]
    if len(class_names) != classes:
        raise DataError(f"--model={name} outputs {classes} classes but lists {len(class_names)} class names")
    if task.name == "multi_label_classification" and thresholds is None:
        log.warning("%s: a multi-label classifier without its run's thresholds; labels are the classes scoring "
                    ">= 0.5", name)
        thresholds = [0.5] * classes
    return Predictor(name, tuple(class_names), shape, "pixels", model.predict_on_batch, crop, max_pixels, model,
                     _checked_thresholds(name, thresholds, classes))


def _checked_thresholds(name: str, thresholds, classes: int):
    if thresholds is None:
        return None
    if len(thresholds) != classes:
        raise DataError(f"--model={name} outputs {classes} classes but lists {len(thresholds)} thresholds")
    return tuple(float(t) for t in thresholds)


def _run_dir_predictor(run_dir: str, trust: bool, model_file: str = None) -> Predictor:
    from fmkeras.config import RunConfig, from_dict
    from fmkeras.model_files.keras_file import load_keras_model
    files = {name: os.path.join(run_dir, name) for name in ("config.json", "metrics.json", "model.keras")}
    files["model.keras"] = model_file or files["model.keras"]
    missing = [name for name, path in files.items() if not os.path.isfile(path)]
    if missing:
        raise DataError(f"{run_dir} is not a finished fmkeras run directory (no {', '.join(missing)})")
    with open(files["config.json"]) as fh:
        data_cfg = from_dict(RunConfig, json.load(fh)).data
    with open(files["metrics.json"]) as fh:
        report = json.load(fh)
    thresholds = (report.get("test") or {}).get("thresholds")  # multi-label runs: picked on validation
    model = load_keras_model(files["model.keras"], trust, compile=False)
    return _keras_predictor(run_dir, model, report.get("class_names"), data_cfg.center_crop,
                            data_cfg.max_image_pixels, thresholds)


def _saved_model_predictor(path: str) -> Predictor:
    from fmkeras.export import list_versions, load_metadata
    if not os.path.isfile(os.path.join(path, "saved_model.pb")) and list_versions(path):
        path = os.path.join(path, str(list_versions(path)[-1]))  # a model's base path: its latest version
    metadata = load_metadata(path)
    loaded = tf.saved_model.load(path)
    if task_for_export(metadata).modality != "image":
        raise DataError(f"--model={path} is a text classifier; predict takes image files")
    serve = loaded.signatures["serving_default"]
    thresholds = metadata.get("thresholds")  # a multi-label export's own (its `labels` output applies them)
    return Predictor(path, tuple(metadata["class_names"]), tuple(metadata["image_shape"]), "bytes",
                     lambda images: serve(images=images)["probabilities"].numpy(),
                     thresholds=_checked_thresholds(path, thresholds, len(metadata["class_names"])))


def _preset_predictor(name: str) -> Predictor:
    """`preset:BACKBONE`: the backbone's pretrained weights with their classifier top (ImageNet classes)."""
    import keras
    from fmkeras.backbones import get_backbone, list_backbones
    from fmkeras.backbones.imagenet_classes import TOP_CLASS_NAMES
    from fmkeras.transfer.layers import BackbonePreprocessing
    from fmkeras.transfer.weights import build_backbone

    def top_preset(backbone):
        presets = get_backbone(backbone).presets
        return next((p for p in sorted(presets) if presets[p].top_file_name and p in TOP_CLASS_NAMES), None)

    if name not in list_backbones() or top_preset(name) is None:
        have = [b for b in list_backbones() if top_preset(b)]
        raise DataError(f"--model=preset:{name}: no pretrained classifier of that name; presets with a classifier "
                        f"top: {', '.join(PRESET_PREFIX + b for b in have)}")
    spec, preset = get_backbone(name), top_preset(name)
    shape = (*spec.default_input_size, spec.channels or 3)
    inputs = keras.Input(shape, name="pixels")
    network = build_backbone(spec, shape, preset, {"include_top": True})
    model = keras.Model(inputs, network(BackbonePreprocessing(name, name="preprocess")(inputs)), name=name)
    return _keras_predictor(PRESET_PREFIX + name, model, TOP_CLASS_NAMES[preset](), PRESET_CROP, DEFAULT_MAX_PIXELS)


def load_predictor(ref: str, trust: bool = False) -> Predictor:
    """A Predictor for a run directory, a SavedModel (version dir or base path), a .keras file or `preset:NAME`.

    Args:
        trust: bool. Let Keras run Python code stored in a .keras file; only for files you trust. Defaults to False.
    """
    from fmkeras.model_files.keras_file import load_keras_model
    if ref.startswith(PRESET_PREFIX):
        return _preset_predictor(ref[len(PRESET_PREFIX):])
    if os.path.isdir(ref) and os.path.isfile(os.path.join(ref, "model.keras")):
        return _run_dir_predictor(ref, trust)
    if ref.endswith(".keras") and os.path.isfile(ref):
        run_dir = os.path.dirname(ref) or "."
        if all(os.path.isfile(os.path.join(run_dir, name)) for name in ("config.json", "metrics.json")):
            return _run_dir_predictor(run_dir, trust, ref)  # a run's model: its class names and crop apply
        return _keras_predictor(ref, load_keras_model(ref, trust, compile=False), None, None, DEFAULT_MAX_PIXELS)
    if (os.path.isdir(ref) and os.path.isfile(os.path.join(ref, "fmkeras.json"))) or _has_versions(ref):
        return _saved_model_predictor(ref)
    raise DataError(f"--model={ref} is not a run directory, a SavedModel, a .keras file or preset:NAME")


def _has_versions(path: str) -> bool:
    from fmkeras.export import list_versions
    return os.path.isdir(path) and bool(list_versions(path))


def _decoded(path: tf.Tensor, channels: int) -> tf.Tensor:
    image = decode_image(tf.io.read_file(path), channels)
    # A zero-sized image decodes "fine" but cannot be resized (same check as fmkeras.data.file_check).
    with tf.control_dependencies([tf.debugging.assert_positive(tf.size(image), message="image has no pixels")]):
        return tf.identity(image)


def _prepare_fn(predictor: Predictor) -> Callable:
    """path -> what predictor.predict_batch takes for one file; raises (in tf.data) for a bad file."""
    size, channels = tuple(predictor.image_shape[:2]), int(predictor.image_shape[2])
    if predictor.takes == "bytes":
        def prepare(path):
            contents = tf.io.read_file(path)
            with tf.control_dependencies([tf.size(_decoded(path, channels))]):  # decodable, else dropped here
                return tf.identity(contents)
        return prepare
    return lambda path: tf.cast(resize_uint8(center_crop(_decoded(path, channels), predictor.crop), size), tf.float32)


def _error(path: str, predictor: Predictor, prepare: Callable) -> str:
    """Why `path` produced no prediction: the file check's reason, else the preparing op's own error."""
    _, skipped = check_image_files([path], predictor.max_pixels)
    if skipped:
        return skipped[0][1]
    try:
        prepare(tf.constant(path))
    except tf.errors.OpError as err:
        return f"cannot prepare: {err.message.splitlines()[0][:300]}"
    return "no prediction (failed only in the batched pipeline)"


def _top_k(probabilities: np.ndarray, class_names: tuple, k: int) -> list:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": class_names[i], "score": round(float(probabilities[i]), 6)} for i in order]


def _over_thresholds(probabilities: np.ndarray, class_names: tuple, thresholds: tuple) -> list:
    chosen = [i for i in np.argsort(-probabilities, kind="stable") if probabilities[i] >= thresholds[i]]
    return [{"label": class_names[i], "score": round(float(probabilities[i]), 6)} for i in chosen]


def predict_files(predictor: Predictor, paths, top_k: int = 5, batch_size: int = 32) -> list:
    """One row per path, in order: {"path", "top_k": [{"label", "score"}, ...], "error": None or the reason},
    and for a multi-label predictor `labels`: the classes at or over their thresholds, highest score first.

    Files whose header declares more than `predictor.max_pixels` pixels are refused before decoding;
    files that fail to read or decode get their error; neither stops the others.
    """
    paths = [str(p) for p in paths]
    k = min(int(top_k), len(predictor.class_names))
    errors = {i: reason for i, p in enumerate(paths) if (reason := oversized(p, predictor.max_pixels))}
    todo = [i for i in range(len(paths)) if i not in errors]
    prepare = _prepare_fn(predictor)
    top, labels = {}, {}
    if todo:
        ds = tf.data.Dataset.from_tensor_slices((np.asarray(todo, np.int64), [paths[i] for i in todo]))
        ds = ds.map(lambda i, p: (i, prepare(p)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        for indices, batch in ds.ignore_errors().batch(batch_size).prefetch(1):
            probabilities = np.asarray(predictor.predict_batch(batch))
            if probabilities.shape[-1] != len(predictor.class_names):
                raise DataError(f"--model={predictor.name} returned {probabilities.shape[-1]} scores per image for "
                                f"{len(predictor.class_names)} class names")
            top.update((int(i), _top_k(p, predictor.class_names, k)) for i, p in zip(indices.numpy(), probabilities))
            if predictor.thresholds is not None:
                labels.update((int(i), _over_thresholds(p, predictor.class_names, predictor.thresholds))
                              for i, p in zip(indices.numpy(), probabilities))
    for i in todo:
        if i not in top:
            errors[i] = _error(paths[i], predictor, prepare)
    if predictor.thresholds is None:
        return [{"path": p, "top_k": top.get(i, []), "error": errors.get(i)} for i, p in enumerate(paths)]
    return [{"path": p, "top_k": top.get(i, []), "labels": labels.get(i, []), "error": errors.get(i)}
            for i, p in enumerate(paths)]


def explain_files(predictor: Predictor, rows: list, out_dir: str) -> list:
    """Writes a Grad-CAM overlay `<out_dir>/<NNNN>_<file name>.png` for every row that has a prediction and
    sets the row's `explanation` to its path (the heat of the top-1 class: where the model looked).

    Needs a Keras classifier with a conv backbone (a run directory or a .keras file); SavedModels and presets
    carry no backbone layer to take gradients at, which is a DataError naming the model.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fmkeras.evaluate.gradcam import gradcam
    if predictor.model is None:
        raise DataError(f"--explain needs a run directory or a .keras classifier (Grad-CAM takes gradients at "
                        f"its backbone); --model={predictor.name} is not one")
    os.makedirs(out_dir, exist_ok=True)
    prepare = _prepare_fn(predictor)
    for index, row in enumerate(rows):
        if row["error"] is not None:
            continue
        pixels = prepare(tf.constant(row["path"])).numpy()[np.newaxis]
        label = row["top_k"][0]["label"]
        try:
            heat = gradcam(predictor.model, pixels, [predictor.class_names.index(label)])[0]
        except ValueError as err:  # e.g. a ViT: tokens, not a feature map
            raise DataError(f"--explain: {err}") from None
        fig, ax = plt.subplots(figsize=(3, 3.2))
        image = pixels[0] / 255.0
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
        ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(f"{label} ({row['top_k'][0]['score']:.2f})", fontsize=8)
        ax.axis("off")
        path = os.path.join(out_dir, f"{index:04d}_{os.path.basename(row['path'])}.png")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        row["explanation"] = path
    return rows


def csv_header(k: int, multi_label: bool = False) -> list:
    """path, label1, score1, ..., labelK, scoreK, [labels,] error (`labels`: a multi-label model's classes at or
    over their thresholds, `;`-separated as in multilabel CSV sources)."""
    return ["path", *[f"{name}{j}" for j in range(1, k + 1) for name in ("label", "score")],
            *(["labels"] if multi_label else []), "error"]


def write_predictions(rows: list, out, fmt: str = "csv", k: int = 5):
    """Writes rows to the text stream `out`: CSV (header + one line per file; empty cells where a file has
    fewer than k labels; a `labels` column for multi-label rows) or JSON (an array with one object per line)."""
    if fmt == "json":
        lines = [json.dumps(row, ensure_ascii=False) for row in rows]
        out.write("[\n" + ",\n".join(lines) + ("\n" if lines else "") + "]\n")
        return
    if fmt != "csv":
        raise ValueError(f"`format` must be csv or json. Received: format={fmt!r}")
    writer = csv.writer(out, lineterminator="\n")
    multi_label = any("labels" in row for row in rows)
    writer.writerow(csv_header(k, multi_label))
    for row in rows:
        cells = [value for item in row["top_k"] for value in (item["label"], item["score"])]
        labels = [";".join(item["label"] for item in row.get("labels", []))] if multi_label else []
        writer.writerow([row["path"], *cells, *[""] * (2 * k - len(cells)), *labels, row["error"] or ""])
