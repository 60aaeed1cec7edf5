"""Decode every image file once, up front, so a bad file is skipped and reported instead of crashing an epoch.

The check runs the same TF decoder the pipeline uses (`decode.decode_image`), in parallel
through tf.data, so whatever it accepts the pipeline decodes too: CMYK JPEGs, grayscale
and 16-bit PNGs, PNGs with alpha, GIFs (first frame) and BMPs are converted later;
truncated or empty files and non-images with an image extension are skipped, each with
the decoder's reason. Before any decoding, each header's declared size is read
(image_header.py): a file declaring more than `max_pixels` pixels (a decompression bomb) is
refused from its header and never reaches a decoder.

Example:
    good, skipped = check_image_files(paths)   # skipped: [(path, reason), ...]
"""
from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from fmkeras.data.decode import decode_image
from fmkeras.data.image_header import UnreadableHeader, file_header_info

# PIL's default decompression-bomb limit (Image.MAX_IMAGE_PIXELS): 256 MB of 24-bit pixels.
DEFAULT_MAX_PIXELS = 89_478_485


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


def oversized(path: str, max_pixels: int):
    """The reason to refuse `path` from its header alone, or None (also for formats no decoder accepts)."""
    try:
        info = file_header_info(path)
    except OSError as err:
        return f"cannot read: {err.strerror or err}"
    except UnreadableHeader as err:
        return f"unreadable image header: {err} (refused before decoding)"
    if info is not None and info.pixels > max_pixels:
        frames = f" ({info.pixels} over its frames)" if info.pixels != info.width * info.height else ""
        return (f"header declares {info.width}x{info.height} pixels{frames}, more than "
                f"data.max_image_pixels={max_pixels} (refused before decoding)")
    return None


def check_image_files(paths, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple:
    """Returns (boolean mask of decodable files, [(path, reason) for the others]).

    max_pixels: files whose header declares more pixels are refused without being decoded.
    """
    paths = np.asarray(paths, dtype=object)
    if len(paths) == 0:
        return np.zeros(0, bool), []
    refused = {i: reason for i, p in enumerate(paths) if (reason := oversized(str(p), max_pixels))}
    candidates = np.asarray([i for i in range(len(paths)) if i not in refused], np.int64)
    good = np.zeros(len(paths), bool)
    if len(candidates):
        good[candidates] = _decodable(paths[candidates])
    skipped = [(str(p), refused.get(i) or _reason(str(p))) for i, p in enumerate(paths) if not good[i]]
    return good, skipped


def _decodable(paths: np.ndarray) -> np.ndarray:
    """Boolean mask of the files TF's decoder accepts, decoded in parallel."""
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), paths.astype(str)))
    ds = ds.map(lambda i, p: (i, _decodes(p)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    ds = ds.ignore_errors().batch(1024)
    good = np.zeros(len(paths), bool)
    for indices, _ in ds.as_numpy_iterator():
        good[indices] = True
    return good
