"""SimCLR views for small grayscale (or RGB) images: random resized crop, then fused flip + jitter.

Each view is a random crop keeping `crop_min_scale`..1 of the area (aspect 3/4..4/3) resized back
to the input size (bilinear, one `crop_and_resize` op per batch), followed by the fused
augmentation of fmkeras.data.augment (horizontal flip, brightness, contrast), then optional
gaussian pixel noise (`noise_stddev`) and random erasing (`erase_prob`, `erase_max_area`).
Randomness is stateless: the same seed gives the same views.

Example:
    view1, view2 = two_views(images, PretrainConfig(), seed=tf.constant([3, 4], tf.int64))
"""
from __future__ import annotations

import math

import tensorflow as tf

from fmkeras.config import AugmentConfig, PretrainConfig
from fmkeras.data.augment import augment_batch


def _uniform(shape, seed, index, low=0.0, high=1.0):
    return tf.random.stateless_uniform(shape, seed=tf.stack([seed[0], seed[1] + index]), minval=low, maxval=high)


def random_crop_boxes(batch, min_scale: float, seed: tf.Tensor) -> tf.Tensor:
    """(B, 4) normalised [y1, x1, y2, x2] boxes of random area in [min_scale, 1] and aspect in [3/4, 4/3]."""
    area = _uniform([batch], seed, 0, min_scale, 1.0)
    log_aspect = _uniform([batch], seed, 1, math.log(3 / 4), math.log(4 / 3))
    aspect = tf.exp(log_aspect)
    height = tf.minimum(tf.sqrt(area / aspect), 1.0)
    width = tf.minimum(tf.sqrt(area * aspect), 1.0)
    top = _uniform([batch], seed, 2) * (1.0 - height)
    left = _uniform([batch], seed, 3) * (1.0 - width)
    return tf.stack([top, left, top + height, left + width], axis=1)


def random_resized_crop(images: tf.Tensor, min_scale: float, seed: tf.Tensor) -> tf.Tensor:
    """Crops a random box of each image (B, H, W, C) and resizes it back to (H, W)."""
    shape = tf.shape(images)
    boxes = random_crop_boxes(shape[0], min_scale, seed)
    return tf.image.crop_and_resize(images, boxes, tf.range(shape[0]), shape[1:3], method="bilinear")


def random_erasing(images: tf.Tensor, probability: float, max_area: float, seed: tf.Tensor) -> tf.Tensor:
    """With `probability` per image, fills a random rectangle of area up to `max_area` (aspect 1/2..2,
    at least 1/50 of the image) with uniform noise in [0, 255] (Zhong et al. 2020, random erasing)."""
    shape = tf.shape(images)
    batch, height, width = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    area = _uniform([batch], seed, 20, min(0.02, max_area), max_area)
    aspect = tf.exp(_uniform([batch], seed, 21, math.log(0.5), math.log(2.0)))
    box_h = tf.minimum(tf.sqrt(area / aspect), 1.0)
    box_w = tf.minimum(tf.sqrt(area * aspect), 1.0)
    top = _uniform([batch], seed, 22) * (1.0 - box_h)
    left = _uniform([batch], seed, 23) * (1.0 - box_w)
    on = tf.cast(_uniform([batch], seed, 24) < probability, tf.float32)
    rows = (tf.range(height) + 0.5) / height  # pixel centres in [0, 1]
    cols = (tf.range(width) + 0.5) / width
    inside_y = tf.cast((rows[None, :] >= top[:, None]) & (rows[None, :] < (top + box_h)[:, None]), tf.float32)
    inside_x = tf.cast((cols[None, :] >= left[:, None]) & (cols[None, :] < (left + box_w)[:, None]), tf.float32)
    mask = (inside_y[:, :, None] * inside_x[:, None, :] * on[:, None, None])[..., None]  # (B, H, W, 1)
    noise = tf.random.stateless_uniform(shape, seed=tf.stack([seed[0], seed[1] + 25]), maxval=255.0)
    return images * (1.0 - mask) + noise * mask


def gaussian_noise(images: tf.Tensor, stddev: float, seed: tf.Tensor) -> tf.Tensor:
    """Adds N(0, stddev) noise (pixel units) and clips back to [0, 255]."""
    noise = tf.random.stateless_normal(tf.shape(images), seed=tf.stack([seed[0], seed[1] + 30]), stddev=stddev)
    return tf.clip_by_value(images + noise, 0.0, 255.0)


def simclr_view(images: tf.Tensor, cfg: PretrainConfig, seed: tf.Tensor) -> tf.Tensor:
    """One random view of float images in [0, 255]: crop, flip + jitter, then optional noise and erasing."""
    seed = tf.cast(seed, tf.int64)
    images = random_resized_crop(tf.cast(images, tf.float32), cfg.crop_min_scale, seed)
    jitter = AugmentConfig(horizontal_flip=cfg.horizontal_flip, brightness=cfg.brightness, contrast=cfg.contrast)
    images = augment_batch(images, jitter, seed + tf.constant([0, 101], tf.int64))
    if cfg.noise_stddev:
        images = gaussian_noise(images, cfg.noise_stddev, seed)
    if cfg.erase_prob:
        images = random_erasing(images, cfg.erase_prob, cfg.erase_max_area, seed)
    return images


def two_views(images: tf.Tensor, cfg: PretrainConfig, seed: tf.Tensor) -> tuple:
    """Two independent views of the same batch (different crops, flips and jitter)."""
    seed = tf.cast(seed, tf.int64)
    return simclr_view(images, cfg, seed), simclr_view(images, cfg, seed + tf.constant([1, 7919], tf.int64))
