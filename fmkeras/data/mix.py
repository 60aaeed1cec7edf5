"""MixUp and CutMix on whole batches, with one-hot soft labels.

Each image is mixed with its neighbour in the (already shuffled) batch, `tf.roll(x, 1)`.
MixUp blends pixels with weight lam ~ Beta(a, a); CutMix pastes a box covering 1 - lam of
the partner image and sets lam to the area actually kept. Labels become
lam * onehot(y) + (1 - lam) * onehot(y_partner), so the trainer switches to a categorical
loss when it sees rank-2 labels.

Example:
    images, soft = mix_batch(images, labels, AugmentConfig(mixup=0.2), num_classes=10, seed=[1, 2])
"""
from __future__ import annotations

import tensorflow as tf

from fmkeras.config import AugmentConfig


def uses_mixing(cfg: AugmentConfig) -> bool:
    """True when the training labels become soft (mixup and/or cutmix on)."""
    return bool(cfg.mixup or cfg.cutmix)


def _seed(seed, index: int) -> tf.Tensor:
    seed = tf.cast(seed, tf.int64)
    return tf.stack([seed[0], seed[1] + 100 + index])


def sample_beta(shape, alpha: float, seed) -> tf.Tensor:
    """Beta(alpha, alpha) samples from two stateless gammas."""
    a = tf.random.stateless_gamma(shape, seed=_seed(seed, 0), alpha=alpha)
    b = tf.random.stateless_gamma(shape, seed=_seed(seed, 1), alpha=alpha)
    return a / tf.maximum(a + b, 1e-12)


def mixup(images: tf.Tensor, lam: tf.Tensor) -> tf.Tensor:
    """Blends each image with its batch neighbour; lam (B,) is the weight of the image itself."""
    lam = tf.reshape(lam, [-1, 1, 1, 1])
    return images * lam + tf.roll(images, 1, axis=0) * (1 - lam)


def cutmix(images: tf.Tensor, lam: tf.Tensor, seed) -> tuple:
    """Pastes a random box of the neighbour image; returns (images, lam actually kept)."""
    shape = tf.shape(images)
    batch, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    cut = tf.sqrt(1.0 - lam)
    cy = tf.random.stateless_uniform([batch], seed=_seed(seed, 2)) * h
    cx = tf.random.stateless_uniform([batch], seed=_seed(seed, 3)) * w
    y0, y1 = tf.clip_by_value(cy - cut * h / 2, 0, h), tf.clip_by_value(cy + cut * h / 2, 0, h)
    x0, x1 = tf.clip_by_value(cx - cut * w / 2, 0, w), tf.clip_by_value(cx + cut * w / 2, 0, w)
    rows = tf.range(h)[None, :] + 0.5
    cols = tf.range(w)[None, :] + 0.5
    in_rows = (rows >= y0[:, None]) & (rows < y1[:, None])
    in_cols = (cols >= x0[:, None]) & (cols < x1[:, None])
    box = tf.cast(in_rows[:, :, None] & in_cols[:, None, :], images.dtype)[..., None]
    mixed = images * (1 - box) + tf.roll(images, 1, axis=0) * box
    kept = 1.0 - tf.reduce_mean(tf.cast(box, tf.float32), axis=[1, 2, 3])
    return mixed, kept


def mix_batch(images: tf.Tensor, labels: tf.Tensor, cfg: AugmentConfig, num_classes: int, seed) -> tuple:
    """Applies the configured MixUp/CutMix to a float batch; returns (images, float32 soft labels (B, K))."""
    onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes) if labels.shape.rank == 1 else labels
    if not uses_mixing(cfg):
        return images, onehot
    batch = tf.shape(images)[0]
    images = tf.cast(images, tf.float32)
    candidates = []  # (images, lam) per enabled method
    if cfg.mixup:
        lam = sample_beta([batch], cfg.mixup, seed)
        candidates.append((mixup(images, lam), lam))
    if cfg.cutmix:
        candidates.append(cutmix(images, sample_beta([batch], cfg.cutmix, _seed(seed, 4)), seed))
    images, lam = candidates[0]
    if len(candidates) == 2:  # both on: this batch uses CutMix or MixUp, 50/50
        use_cut = tf.random.stateless_uniform([], seed=_seed(seed, 5)) < 0.5
        images = tf.where(use_cut, candidates[1][0], images)
        lam = tf.where(use_cut, candidates[1][1], lam)
    lam = lam[:, None]
    return images, onehot * lam + tf.roll(onehot, 1, axis=0) * (1 - lam)
