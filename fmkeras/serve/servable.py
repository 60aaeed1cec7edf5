"""One loaded SavedModel version: its signatures, their input specs and a thread-safe call.

Loading uses `tf.saved_model.load`, which rebuilds the serialized graph only: no Python code
(pickles, Lambda layers, custom objects) from the file is ever executed.
"""
from __future__ import annotations

import json
import os
import threading

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from fmkeras.export.saved_model import METADATA_FILE
from fmkeras.serve.status import InvalidArgument, redact_paths


def is_complete(version_dir: str) -> bool:
    """True when an export finished: saved_model.pb, variables/ and fmkeras.json (written last), and every
    file fmkeras.json's `files` manifest lists has its listed size (so a version copied file by file, in
    any order, counts as complete only once its last byte is there)."""
    if not (os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
            and os.path.isfile(os.path.join(version_dir, "variables", "variables.index"))
            and os.path.isfile(os.path.join(version_dir, METADATA_FILE))):
        return False
    try:
        with open(os.path.join(version_dir, METADATA_FILE)) as fh:
            manifest = json.load(fh).get("files")
    except (OSError, ValueError, AttributeError):  # fmkeras.json itself still being written
        return False
    if manifest is None:
        return True  # exported before manifests existed
    if not isinstance(manifest, dict):
        return False
    for relative, size in manifest.items():
        path = os.path.normpath(os.path.join(version_dir, relative))
        if not path.startswith(os.path.normpath(version_dir) + os.sep):
            return False  # a manifest must not point outside its version
        try:
            if os.path.getsize(path) != size:
                return False
        except OSError:
            return False
    return True


def signature_defs_json(version_dir: str) -> dict:
    """The SavedModel's signature defs as TF Serving's metadata endpoint prints them."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as fh:
        proto.ParseFromString(fh.read())
    graph = proto.meta_graphs[0]
    return {name: json_format.MessageToDict(graph.signature_def[name], preserving_proto_field_name=True,
                                            always_print_fields_with_no_presence=True)
            for name in sorted(graph.signature_def)}


def tf_error_text(err: tf.errors.OpError) -> str:
    """The line of a TF op error that says what was wrong, without graph node dumps."""
    lines = [line.strip() for line in str(err.message).splitlines()]
    useful = [line for line in lines if line and not line.startswith(("[[", "<stack", "Detected at node",
                                                                      "Graph execution error"))]
    return (useful[0] if useful else lines[0])[:500]


class ServedVersion:
    """A loaded version: `run(signature, {input: array})` -> {output: array}."""

    def __init__(self, name: str, version: int, path: str):
        self.name, self.version, self.path = name, int(version), path
        with open(os.path.join(path, METADATA_FILE)) as fh:
            self.metadata = json.load(fh)
        self.signature_defs = signature_defs_json(path)
        self._loaded = tf.saved_model.load(path)
        self.signatures = dict(self._loaded.signatures)
        self.input_specs = {name: fn.structured_input_signature[1] for name, fn in self.signatures.items()}
        self._lock = threading.Lock()  # concrete functions may be called from many request threads

    def run(self, signature_name: str, inputs: dict) -> dict:
        """Calls a signature on numpy inputs; bad values (e.g. undecodable images) -> InvalidArgument."""
        fn = self.signatures[signature_name]
        tensors = {k: tf.constant(v) for k, v in inputs.items()}
        try:
            with self._lock:
                outputs = fn(**tensors)
        except (tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as err:
            raise InvalidArgument(redact_paths(tf_error_text(err))) from None
        return {k: np.asarray(v) for k, v in outputs.items()}
