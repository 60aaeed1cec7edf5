"""Decode every image file once, up front, so a bad file is skipped and reported instead of crashing an epoch.

The check runs the same TF decoder the pipeline uses (`decode.decode_image`), in parallel
through tf.data, so whatever it accepts the pipeline decodes too: CMYK JPEGs, grayscale
and 16-bit PNGs, PNGs with alpha, GIFs (first frame) and BMPs are converted later;
truncated or empty files and non-images with an image extension are skipped, each with
the decoder's reason.

Example:
    good, skipped = check_image_files(paths)   # skipped: [(path, reason), ...]
"""
from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from fmkeras.data.decode import decode_image


def _decodes(path: tf.Tensor) -> tf.Tensor:
    image = decode_image(tf.io.read_file(path), 3)
    # An image with a zero-sized side decodes "fine" but cannot be resized: reject it here too.
    tf.debugging.assert_positive(tf.size(image), message="image has no pixels")
    return tf.shape(image)


def _reason(path: str) -> str:
    """The decoder's own error for one file, without TF's function-node noise."""
    try:
        _decodes(tf.constant(path))
    except tf.errors.OpError as err:
        message = re.sub(r"\{\{[^}]*\}\}\s*", "", err.message).split(" [Op:")[0].strip()
        return f"cannot decode: {message.splitlines()[0] if message else type(err).__name__}"
    return "cannot decode (failed in the parallel check only)"


def check_image_files(paths) -> tuple:
    """Returns (boolean mask of decodable files, [(path, reason) for the others])."""
    paths = np.asarray(paths, dtype=object)
    if len(paths) == 0:
        return np.zeros(0, bool), []
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), paths.astype(str)))
    ds = ds.map(lambda i, p: (i, _decodes(p)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    ds = ds.ignore_errors().batch(1024)
    good = np.zeros(len(paths), bool)
    for indices, _ in ds.as_numpy_iterator():
        good[indices] = True
    skipped = [(str(p), _reason(str(p))) for p in paths[~good]]
    return good, skipped
