"""SavedModel export for text classifiers: the signature takes raw strings.

Signature `serving_default`: input `text`, tf.string (N,); outputs `probabilities` (N, K),
`class_ids` (N,), `class_names` (N,). Tokenizing (`TextVectorization` and its vocabulary) is in
the graph, so a client sends text exactly as it was written.

Example:
    version, path = export_text_saved_model(model, "saved_models/debian", class_names)
    tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(["chess engine"]))
"""
from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from fmkeras.export.saved_model import METADATA_FILE, _class_outputs, file_manifest
from fmkeras.export.versions import publish_version


def build_text_archive(model: keras.Model, class_names) -> keras.export.ExportArchive:
    """An ExportArchive tracking `model` (strings in) with the `serving_default` text endpoint."""
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve_text(text):
        return _class_outputs(model(text, training=False), class_names)

    archive.add_endpoint("serving_default", serve_text, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    return archive


def export_text_saved_model(model: keras.Model, base_path: str, class_names, extra_metadata: dict = None) -> tuple:
    """Writes the next numbered version under `base_path`; returns (version, path)."""
    metadata = {"class_names": list(class_names), "modality": "text", "input": "text",
                "signatures": ["serving_default"], **(extra_metadata or {})}

    def write(tmp_dir):
        build_text_archive(model, class_names).write_out(tmp_dir, verbose=False)
        files = file_manifest(tmp_dir)  # the server refuses a version whose files differ (half copied)
        with open(os.path.join(tmp_dir, METADATA_FILE), "w") as fh:
            json.dump({**metadata, "files": files}, fh, indent=2)

    return publish_version(base_path, write)
