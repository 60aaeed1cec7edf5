"""tf.data pipelines: split, decode+resize once, cache, shuffle, batch, augment batches, prefetch.

Example:
    source = load_source(cfg.data)
    data = build_datasets(source, cfg.data, batch_size=128)
    model.fit(data.train, validation_data=data.val)
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from fmkeras.config import DataConfig
from fmkeras.data.augment import augment_batch, is_identity
from fmkeras.data.decode import load_and_prepare, prepare_image
from fmkeras.data.source import Source
from fmkeras.data.stream import StepBatches
from fmkeras.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Datasets:
    """Batched datasets of (float32 images in [0, 255], int64 labels) plus what the model needs."""
    train: tf.data.Dataset
    val: Optional[tf.data.Dataset]
    test: Optional[tf.data.Dataset]
    image_shape: tuple
    class_names: tuple
    num_train: int
    num_val: int
    num_test: int
    skipped: tuple = ()
    # (start, num) -> `num` training batches from global batch `start`, a pure function of the seed
    # (what resumable training iterates; `train` reshuffles per iteration instead).
    train_batches: Optional[Callable] = None


def split_indices(n: int, validation_split: float, seed: int) -> tuple:
    """A fixed-seed permutation of range(n) cut into (train, validation) index arrays."""
    order = np.random.default_rng(seed).permutation(n)
    num_val = int(round(n * validation_split))
    return order[num_val:], order[:num_val]


def resolve_image_shape(source: Source, cfg: DataConfig) -> tuple:
    """(H, W, C) the model sees: config overrides, else the source's own shape."""
    channels = cfg.channels or source.channels
    if cfg.image_size:
        return (*cfg.image_size, channels)
    if source.image_shape is None:
        raise DataError(f"{source.name}: images have different sizes; set `data.image_size` (e.g. 224,224)")
    return (*source.image_shape[:2], channels)


def _examples(source: Source, x, y, shape: tuple) -> tf.data.Dataset:
    size, channels = shape[:2], shape[2]
    ds = tf.data.Dataset.from_tensor_slices((x.astype(str) if source.kind == "files" else x, y))
    if source.kind == "files":
        return ds.map(lambda p, label: (load_and_prepare(p, size, channels), label), num_parallel_calls=AUTOTUNE)
    return ds.map(lambda img, label: (prepare_image(img, size, channels), label), num_parallel_calls=AUTOTUNE)


def _finish(ds: tf.data.Dataset, cfg: DataConfig, batch_size: int, training: bool, count: int) -> tf.data.Dataset:
    if cfg.cache == "memory":
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(cfg.shuffle_buffer, max(count, 1)), seed=cfg.seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)
    if training and not is_identity(cfg.augment):
        # One random int64 per batch, re-drawn each epoch yet reproducible from the seed.
        seeds = tf.data.Dataset.random(seed=cfg.seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda batch, s: (augment_batch(batch[0], cfg.augment, tf.stack([s, s // 7 + 1])), batch[1]),
            num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    options.experimental_deterministic = not training or cfg.seed is not None
    return ds.with_options(options).prefetch(AUTOTUNE)


def build_datasets(source: Source, cfg: DataConfig, batch_size: int) -> Datasets:
    """Splits `source` into train/val (fixed seed) and builds batched pipelines for train, val and test."""
    shape = resolve_image_shape(source, cfg)
    train_idx, val_idx = split_indices(len(source.y_train), cfg.validation_split, cfg.seed)
    if cfg.limit_train:
        train_idx = train_idx[: cfg.limit_train]
        val_idx = val_idx[: max(1, int(round(cfg.limit_train * cfg.validation_split)))] if len(val_idx) else val_idx
    if len(train_idx) == 0:
        raise DataError(f"{source.name}: no training examples left after the validation split")
    x, y = source.x_train, source.y_train
    train_examples = _examples(source, x[train_idx], y[train_idx], shape)
    train = _finish(train_examples, cfg, batch_size, True, len(train_idx))
    val = (_finish(_examples(source, x[val_idx], y[val_idx], shape), cfg, batch_size, False, len(val_idx))
           if len(val_idx) else None)
    test, num_test = None, 0
    if source.x_test is not None and len(source.y_test):
        xt, yt = source.x_test, source.y_test
        if cfg.limit_test:
            xt, yt = xt[: cfg.limit_test], yt[: cfg.limit_test]
        test = _finish(_examples(source, xt, yt, shape), cfg, batch_size, False, len(yt))
        num_test = len(yt)
    return Datasets(train=train, val=val, test=test, image_shape=shape, class_names=source.class_names,
                    num_train=len(train_idx), num_val=len(val_idx), num_test=num_test, skipped=source.skipped,
                    train_batches=StepBatches(train_examples, cfg, batch_size, len(train_idx)))
