"""The per-batch training transform: fused augmentation, then MixUp/CutMix, from one seed per batch.

Both the epoch pipeline (fmkeras.data.pipeline) and the step-indexed stream (fmkeras.data.stream) apply it,
so a resumed run sees the same batches as an uninterrupted one.
"""
from __future__ import annotations

import tensorflow as tf

from fmkeras.config import DataConfig
from fmkeras.data.augment import augment_batch
from fmkeras.data.mix import mix_batch, uses_mixing


def training_batch_transform(cfg: DataConfig, num_classes: int):
    """The per-batch training map `((images, labels), int64 seed) -> (float32 images, labels)`:
    fused augmentation, then MixUp/CutMix (soft labels)."""
    def transform(batch, seed):
        images, labels = batch
        seeds = tf.stack([seed, seed // 7 + 1])
        images = tf.cast(augment_batch(images, cfg.augment, seeds), tf.float32)  # uint8 in: warped as uint8 taps
        if uses_mixing(cfg.augment):
            images, labels = mix_batch(images, labels, cfg.augment, num_classes, seeds + 11)
        return images, labels
    return transform
