"""SavedModel export with serving signatures that do training's preprocessing in-graph.

Signatures (outputs: `probabilities` (N, K), `class_ids` (N,), `class_names` (N,); for a multi-label model,
exported with per-class `thresholds`: `probabilities` (N, K) sigmoid scores and `labels` (N, K) booleans,
score >= that class's threshold):
- `serving_default`: `images`, a batch of encoded PNG/JPEG/GIF/BMP bytes (tf.string, (N,)).
- `serve_pixels`: `pixels`, uint8 (N, H, W, C) at any size; resized like training images.
- `serve_pixels_tta` (only with `export.tta`): as `serve_pixels`, with the probabilities averaged over the
  test-time-augmentation views of fmkeras.evaluate.tta (e.g. `flip`: the image and its mirror).

Example:
    version, path = export_saved_model(model, "saved_models/fashion", class_names, (28, 28, 1))
"""
from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from fmkeras.data.decode import decode_image, prepare_image
from fmkeras.export.versions import publish_version

METADATA_FILE = "fmkeras.json"


def _class_outputs(probabilities, class_names, thresholds=None):
    """What a signature returns for `probabilities`: the top class (id and name), or with per-class
    `thresholds` (multi-label) the boolean decision per class."""
    if thresholds is not None:
        return {"probabilities": probabilities,
                "labels": probabilities >= tf.constant(thresholds, probabilities.dtype)}
    class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return {"probabilities": probabilities, "class_ids": class_ids,
            "class_names": tf.gather(tf.constant(list(class_names)), class_ids)}


def build_archive(model: keras.Model, class_names, image_shape: tuple, crop=None,
                  tta=None, thresholds=None) -> keras.export.ExportArchive:
    """An ExportArchive tracking `model` with the bytes and pixels endpoints (+ the TTA one if `tta`).

    crop: the training run's `data.center_crop`, so a served photo is cropped as training photos were.
    thresholds: per-class score cuts of a multi-label model (outputs `labels` instead of the top class).
    """
    size, channels = tuple(image_shape[:2]), int(image_shape[2])
    archive = keras.export.ExportArchive()
    archive.track(model)

    def outputs(images):
        return _class_outputs(model(images, training=False), class_names, thresholds)

    def serve_bytes(images):
        pixels = tf.map_fn(lambda b: prepare_image(decode_image(b, channels), size, channels, crop), images,
                           fn_output_signature=tf.TensorSpec((*size, channels), tf.float32))
        return outputs(pixels)

    def serve_pixels(pixels):
        return outputs(prepare_image(pixels, size, channels, crop))

    archive.add_endpoint("serving_default", serve_bytes,
                         input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    archive.add_endpoint("serve_pixels", serve_pixels,
                         input_signature=[tf.TensorSpec([None, None, None, channels], tf.uint8, name="pixels")])
    if tta:
        from fmkeras.evaluate.tta import tta_predict
        averaged = tta_predict(lambda x: model(x, training=False), tta)

        def serve_pixels_tta(pixels):
            return _class_outputs(averaged(prepare_image(pixels, size, channels, crop)), class_names, thresholds)

        archive.add_endpoint("serve_pixels_tta", serve_pixels_tta,
                             input_signature=[tf.TensorSpec([None, None, None, channels], tf.uint8, name="pixels")])
    return archive


def file_manifest(directory: str) -> dict:
    """{relative path: size in bytes} of every file under `directory`, '/'-separated.

    Stored in fmkeras.json, it lets a server tell a complete version from one still being copied
    file by file (a copy that writes fmkeras.json first would otherwise look complete).
    """
    manifest = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            manifest[os.path.relpath(path, directory).replace(os.sep, "/")] = os.path.getsize(path)
    return dict(sorted(manifest.items()))


def export_saved_model(model: keras.Model, base_path: str, class_names, image_shape: tuple,
                       extra_metadata: dict = None, crop=None, tta=None, thresholds=None) -> tuple:
    """Writes the next numbered version under `base_path`; returns (version, path).

    crop: central-crop fraction the serving graph applies before resizing (the run's `data.center_crop`).
    tta: "flip" or a number of views adds the `serve_pixels_tta` signature.
    thresholds: per-class score cuts (K,) of a multi-label model; its signatures then return `labels`
    (N, K) booleans beside `probabilities`, and fmkeras.json lists the thresholds.
    """
    if thresholds is not None:
        thresholds = [float(t) for t in thresholds]
        if len(thresholds) != len(class_names):
            raise ValueError(f"thresholds must have one value per class ({len(class_names)}). "
                             f"Received: {len(thresholds)} thresholds")
    signatures = ["serving_default", "serve_pixels"] + (["serve_pixels_tta"] if tta else [])
    metadata = {"class_names": list(class_names), "modality": "image", "image_shape": list(image_shape),
                "center_crop": crop,
                "signatures": signatures, **({"tta": str(tta)} if tta else {}),
                **({"thresholds": thresholds} if thresholds is not None else {}), **(extra_metadata or {})}

    def write(tmp_dir):
        build_archive(model, class_names, image_shape, crop, tta, thresholds).write_out(tmp_dir, verbose=False)
        files = file_manifest(tmp_dir)
        with open(os.path.join(tmp_dir, METADATA_FILE), "w") as fh:
            json.dump({**metadata, "files": files}, fh, indent=2)

    return publish_version(base_path, write)


def load_metadata(version_dir: str) -> dict:
    """Reads the fmkeras metadata written beside an exported SavedModel."""
    with open(os.path.join(version_dir, METADATA_FILE)) as fh:
        return json.load(fh)
