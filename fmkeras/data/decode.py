"""Decoding and resizing shared by training and the exported serving graph.

Both paths call these functions, so a served image goes through exactly the ops a
training image went through.
"""
from __future__ import annotations

import tensorflow as tf


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Converts an image's last axis to 1 or 3 channels (grayscale <-> RGB, drops alpha)."""
    have = image.shape[-1]
    if have == channels:
        return image
    if have == 4:
        image = image[..., :3]
        have = 3
    if channels == 3 and have == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 1 and have == 3:
        return tf.image.rgb_to_grayscale(image)
    raise ValueError(f"cannot convert {have} channels to {channels}")


def center_crop(image: tf.Tensor, fraction) -> tf.Tensor:
    """The central square of (..., H, W, C) images whose side is `fraction` of the shorter side.

    The usual ImageNet evaluation view (fraction 0.875): photos keep their aspect ratio instead of
    being squashed to a square. None or 0 returns the image unchanged.
    """
    if not fraction:
        return image
    shape = tf.shape(image)
    height, width = shape[-3], shape[-2]
    side = tf.maximum(1, tf.cast(tf.cast(tf.minimum(height, width), tf.float32) * fraction, tf.int32))
    top, left = (height - side) // 2, (width - side) // 2
    return image[..., top:top + side, left:left + side, :]


def prepare_image(image: tf.Tensor, size: tuple, channels: int, crop=None) -> tf.Tensor:
    """uint8/float (..., H, W, C) -> float32 (..., size[0], size[1], channels) in [0, 255].

    crop: optional central-crop fraction applied before resizing (see `center_crop`).
    """
    image = center_crop(to_channels(image, channels), crop)
    image = tf.cast(image, tf.float32)
    if image.shape[-3:-1] != tuple(size):
        image = tf.image.resize(image, size, method="bilinear", antialias=True)
        image = tf.clip_by_value(image, 0.0, 255.0)
    return image


def decode_image(contents: tf.Tensor, channels: int) -> tf.Tensor:
    """Encoded PNG/JPEG/GIF/BMP bytes -> uint8 (H, W, channels); the first frame of a GIF."""
    image = tf.io.decode_image(contents, channels=0, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, None])
    depth = tf.shape(image)[-1]
    # decode_image's own channel conversion rejects some inputs; normalise explicitly instead.
    image = tf.cond(depth == 4, lambda: image[..., :3], lambda: image)
    image = tf.cond(depth == 2, lambda: image[..., :1], lambda: image)
    if channels == 3:
        image = tf.cond(tf.shape(image)[-1] == 1, lambda: tf.image.grayscale_to_rgb(image), lambda: image)
    else:
        image = tf.cond(tf.shape(image)[-1] == 3, lambda: tf.cast(
            tf.image.rgb_to_grayscale(image), tf.uint8), lambda: image)
    image.set_shape([None, None, channels])
    return image


def resize_uint8(image: tf.Tensor, size: tuple) -> tf.Tensor:
    """uint8 (H, W, C) -> uint8 (size[0], size[1], C); no resampling when the size already matches.

    The pipeline caches these uint8 images (4x smaller than float32); rounding after the
    antialiased resize changes a pixel by at most 0.5 of 255 against the float serving path.
    """
    same = tf.reduce_all(tf.shape(image)[:2] == tf.constant(size, tf.int32))

    def resize():
        out = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.cast(tf.round(tf.clip_by_value(out, 0.0, 255.0)), tf.uint8)

    out = tf.cond(same, lambda: tf.cast(image, tf.uint8), resize)
    return tf.ensure_shape(out, [*size, image.shape[-1]])


def load_uint8(path: tf.Tensor, size: tuple, channels: int, crop=None) -> tf.Tensor:
    """Reads, decodes, center-crops (optional) and resizes an image file to uint8 (size[0], size[1], channels)."""
    return decode_uint8(tf.io.read_file(path), size, channels, crop)


def decode_uint8(contents: tf.Tensor, size: tuple, channels: int, crop=None) -> tf.Tensor:
    """Encoded image bytes -> uint8 (size[0], size[1], channels), ready to cache."""
    return resize_uint8(center_crop(decode_image(contents, channels), crop), size)

