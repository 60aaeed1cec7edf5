"""A step-indexed training stream: batch number g is a pure function of (data seed, g).

The training set (the pipeline's decoded, cached uint8 examples) is read in passes; pass p is
shuffled with a seed derived from (seed, p), and batch g goes through the same training batch
transform as the epoch pipeline (augmentation, then MixUp/CutMix) with a stateless seed derived
from (seed, g). Nothing depends on how many times a dataset was iterated before, so a run
resumed at global step g (in a new process) sees exactly the batches an uninterrupted run
would have seen from step g on.

Example:
    stream = StepBatches(examples, cfg.data, batch_size=64, count=len(train_idx), num_classes=10)
    ds = stream(start=130, num=70)   # batches 130..199, i.e. resume mid-pass
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import tensorflow as tf

from fmkeras.config import DataConfig
from fmkeras.data.augment import is_identity
from fmkeras.data.mix import uses_mixing
from fmkeras.data.training_batch import training_batch_transform

AUTOTUNE = tf.data.AUTOTUNE
_PASS_SEED_STRIDE = 1_000_003  # keeps (seed, pass) pairs apart for any realistic number of passes


class StepBatches:
    """Callable `(start, num) -> Dataset` of `num` (float32 images, labels) batches from global batch `start`.

    Args:
        examples: unbatched (image uint8 or float32 in [0, 255], label) dataset in a fixed order,
            already cached as the caller wants (the pipeline passes its cached decoded examples).
        count: number of examples in `examples`.
        transform: `((images, labels), int64 seed) -> (float32 images, labels)`, the epoch pipeline's
            training batch map (fmkeras.data.training_batch); None builds it from `cfg`.
        num_classes: needed when `cfg.augment` mixes (MixUp/CutMix produce (B, K) soft labels).
    """

    def __init__(self, examples: tf.data.Dataset, cfg: DataConfig, batch_size: int, count: int,
                 transform: Optional[Callable] = None, num_classes: Optional[int] = None):
        if transform is None and uses_mixing(cfg.augment) and not num_classes:
            raise ValueError(f"StepBatches needs num_classes when MixUp/CutMix is on. "
                             f"Received: num_classes={num_classes!r}")
        self.examples = examples
        self.cfg = cfg
        self.batch_size = batch_size
        self.buffer = min(cfg.shuffle_buffer, max(count, 1))
        self.batches_per_pass = max(1, math.ceil(count / batch_size))
        self.identity = is_identity(cfg.augment) and not uses_mixing(cfg.augment)
        if transform is None and not self.identity:
            transform = training_batch_transform(cfg, num_classes)
        self.transform = transform

    def _pass(self, index):
        seed = tf.constant(self.cfg.seed, tf.int64) * _PASS_SEED_STRIDE + index
        batches = self.examples.shuffle(self.buffer, seed=seed, reshuffle_each_iteration=False)
        batches = batches.batch(self.batch_size, drop_remainder=False)
        first = index * self.batches_per_pass
        return tf.data.Dataset.zip((tf.data.Dataset.range(first, first + self.batches_per_pass), batches))

    def _augment(self, step, batch):
        # A fresh, well-mixed seed per global batch (stateless hash of (seed, step)).
        seed = tf.random.stateless_uniform([], seed=tf.stack([tf.constant(self.cfg.seed, tf.int64), step]),
                                           minval=None, maxval=None, dtype=tf.int64)
        return self.transform(batch, seed)

    def __call__(self, start: int, num: int) -> tf.data.Dataset:
        first_pass = start // self.batches_per_pass
        last_pass = (start + max(num, 1) - 1) // self.batches_per_pass
        ds = tf.data.Dataset.range(first_pass, last_pass + 1).flat_map(self._pass)
        ds = ds.skip(start - first_pass * self.batches_per_pass).take(num)
        if self.identity:
            ds = ds.map(lambda step, batch: (tf.cast(batch[0], tf.float32), batch[1]), num_parallel_calls=AUTOTUNE)
        else:
            ds = ds.map(self._augment, num_parallel_calls=AUTOTUNE)
        options = tf.data.Options()
        options.deterministic = True
        return ds.with_options(options).prefetch(AUTOTUNE)
