"""Test-time augmentation: average the predicted probabilities over fixed views of each image.

`flip` = the image and its left-right mirror (2 views). An integer N = the first N of: the image, its
mirror, then 1-pixel shifts right/left/down/up of the image and of its mirror (edge pixels repeated), so
N in 2..10. Views are deterministic, so a TTA score is reproducible. Only label-preserving views belong
here: a mirror suits clothing or animals, not digits or text.

Example:
    predict = tta_predict(lambda x: model(x, training=False), "flip")
"""
from __future__ import annotations

import tensorflow as tf

from fmkeras.data.warp import warp_images

SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))
MAX_VIEWS = 2 + 2 * len(SHIFTS)


def tta_views(mode) -> int:
    """Number of views of `mode` ("flip" or an integer 2..MAX_VIEWS, also as a string); ValueError otherwise."""
    if str(mode) == "flip":
        return 2
    try:
        views = int(mode)
    except (TypeError, ValueError):
        views = 0
    if not 2 <= views <= MAX_VIEWS:
        raise ValueError(f"`tta` must be flip or an integer 2..{MAX_VIEWS}. Received: tta={mode!r}")
    return views


def _shift(images: tf.Tensor, dx: int, dy: int) -> tf.Tensor:
    batch = tf.shape(images)[0]
    # Output pixel (x, y) reads input (x - dx, y - dy): the content moves by (dx, dy).
    transform = tf.constant([1, 0, -dx, 0, 1, -dy, 0, 0], tf.float32)
    return warp_images(images, tf.tile(transform[None], [batch, 1]), fill_mode="nearest", dtype=tf.float32)


def augmented_views(images: tf.Tensor, views: int) -> list:
    """The first `views` deterministic views of a float batch (B, H, W, C)."""
    images = tf.convert_to_tensor(images, tf.float32)
    flipped = tf.reverse(images, axis=[2])
    out = [images, flipped]
    for dx, dy in SHIFTS:
        out += [_shift(images, dx, dy), _shift(flipped, dx, dy)]
    return out[:views]


def tta_predict(predict_fn, mode):
    """Wraps `predict_fn` (images -> probabilities) to return the mean probabilities over the views."""
    views = tta_views(mode)

    def predict(images):
        return tf.add_n([tf.convert_to_tensor(predict_fn(v), tf.float32) for v in augmented_views(images, views)]) / views
    return predict
