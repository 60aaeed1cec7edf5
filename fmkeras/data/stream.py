"""A step-indexed training stream: batch number g is a pure function of (data seed, g).

The training set is read in passes; pass p is shuffled with a seed derived from (seed, p)
and batch g's augmentation draws from a stateless seed derived from (seed, g). Nothing depends
on how many times a dataset was iterated before, so a run resumed at global step g (in a new
process) sees exactly the batches an uninterrupted run would have seen from step g on.

Example:
    stream = StepBatches(examples, cfg.data, batch_size=64, count=len(train_idx))
    ds = stream(start=130, num=70)   # batches 130..199, i.e. resume mid-pass
"""
from __future__ import annotations

import math

import tensorflow as tf

from fmkeras.config import DataConfig
from fmkeras.data.augment import augment_batch, is_identity

AUTOTUNE = tf.data.AUTOTUNE
_PASS_SEED_STRIDE = 1_000_003  # keeps (seed, pass) pairs apart for any realistic number of passes


class StepBatches:
    """Callable `(start, num) -> Dataset` of `num` (images, labels) batches from global batch `start`.

    Args:
        examples: unbatched (image float32 [0, 255], label) dataset, in a fixed order.
        count: number of examples in `examples`.
    """

    def __init__(self, examples: tf.data.Dataset, cfg: DataConfig, batch_size: int, count: int):
        self.examples = examples.cache() if cfg.cache == "memory" else examples
        self.cfg = cfg
        self.batch_size = batch_size
        self.buffer = min(cfg.shuffle_buffer, max(count, 1))
        self.batches_per_pass = max(1, math.ceil(count / batch_size))

    def _pass(self, index):
        seed = tf.constant(self.cfg.seed, tf.int64) * _PASS_SEED_STRIDE + index
        batches = self.examples.shuffle(self.buffer, seed=seed, reshuffle_each_iteration=False)
        batches = batches.batch(self.batch_size, drop_remainder=False)
        first = index * self.batches_per_pass
        return tf.data.Dataset.zip((tf.data.Dataset.range(first, first + self.batches_per_pass), batches))

    def _augment(self, step, batch):
        images, labels = batch
        # A fresh, well-mixed seed pair per global batch (stateless hash of (seed, step)).
        seed = tf.random.stateless_uniform([2], seed=tf.stack([tf.constant(self.cfg.seed, tf.int64), step]),
                                           minval=None, maxval=None, dtype=tf.int64)
        return augment_batch(images, self.cfg.augment, seed), labels

    def __call__(self, start: int, num: int) -> tf.data.Dataset:
        first_pass = start // self.batches_per_pass
        last_pass = (start + max(num, 1) - 1) // self.batches_per_pass
        ds = tf.data.Dataset.range(first_pass, last_pass + 1).flat_map(self._pass)
        ds = ds.skip(start - first_pass * self.batches_per_pass).take(num)
        if is_identity(self.cfg.augment):
            ds = ds.map(lambda step, batch: batch, num_parallel_calls=AUTOTUNE)
        else:
            ds = ds.map(self._augment, num_parallel_calls=AUTOTUNE)
        options = tf.data.Options()
        options.deterministic = True
        return ds.with_options(options).prefetch(AUTOTUNE)
