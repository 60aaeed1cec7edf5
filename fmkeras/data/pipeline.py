"""tf.data pipelines: split, shard, decode+resize once to uint8, cache, shuffle, batch, augment batches.

Per example only decoding and resizing happen (in parallel, once when cached); everything
random runs on whole batches: the fused affine warp (augment.py), brightness/contrast and
MixUp/CutMix (mix.py). `deterministic=False` lets parallel stages hand out elements in
completion order (faster; the trainer passes `train.deterministic`).

Example:
    source = load_source(cfg.data)
    data = build_datasets(source, cfg.data, batch_size=128)
    model.fit(data.train, validation_data=data.val)
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from fmkeras.config import DataConfig
from fmkeras.data.augment import is_identity
from fmkeras.data.cache_files import claim_cache_prefix
from fmkeras.data.decode import center_crop, decode_uint8, load_uint8, resize_uint8, to_channels
from fmkeras.data.mix import uses_mixing
from fmkeras.data.labels import balanced_indices, class_weights, noisy_labels, per_class_indices
from fmkeras.data.source import Source
from fmkeras.data.training_batch import training_batch_transform
from fmkeras.data.stream import StepBatches
from fmkeras.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Datasets:
    """Batched datasets of (float32 images in [0, 255], int64 labels (B,) or, for multi-label sources,
    float32 multi-hot labels (B, K)) plus what the model needs."""
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
    # `data.balance=weights`: class id -> loss weight of the training examples (model.fit's class_weight).
    class_weight: Optional[dict] = None


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


def shard_indices(indices: np.ndarray, num_shards: int, index: int) -> np.ndarray:
    """Every `num_shards`-th example starting at `index`: this worker's share, cut before decoding."""
    if num_shards < 1 or not 0 <= index < num_shards:
        raise DataError(f"shard index must be in [0, num_shards); received index={index}, num_shards={num_shards}")
    return indices[index::num_shards]


def pipeline_options(deterministic: bool, sharded: bool) -> tf.data.Options:
    """tf.data options of every fmkeras pipeline.

    Explicitly sharded pipelines turn tf.distribute's auto-sharding off (they already hold one
    worker's share); others keep AUTO, which shards by data under multi-worker strategies.
    """
    options = tf.data.Options()
    options.deterministic = deterministic
    options.autotune.enabled = True
    options.experimental_optimization.map_parallelization = True
    options.experimental_optimization.parallel_batch = True
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if sharded else tf.data.experimental.AutoShardPolicy.AUTO)
    return options


def decoded_examples(source: Source, x, y, shape: tuple, deterministic: bool = True,
                     crop=None) -> tf.data.Dataset:
    """(uint8 image at the model's size, int64 label) per example, decoded in parallel.

    Files are read and encoded images decoded here, one at a time, so memory holds the resized
    images (or nothing, with data.cache=none), never a dataset's full-size pixels.
    crop: central-crop fraction taken before resizing (`data.center_crop`).
    """
    size, channels = tuple(shape[:2]), shape[2]
    if (source.kind == "arrays" and not crop and x.dtype == np.uint8
            and tuple(x.shape[1:]) == (*size, channels)):  # already what the cache holds: no per-image map
        return tf.data.Dataset.from_tensor_slices((x, y))
    ds = tf.data.Dataset.from_tensor_slices((x.astype(str) if source.kind == "files" else x, y))
    if source.kind == "files":
        prepare = lambda p, label: (load_uint8(p, size, channels, crop), label)  # noqa: E731
    elif source.kind == "encoded":
        prepare = lambda b, label: (decode_uint8(b, size, channels, crop), label)  # noqa: E731
    else:
        prepare = lambda img, label: (  # noqa: E731
            resize_uint8(center_crop(to_channels(img, channels), crop), size), label)
    return ds.map(prepare, num_parallel_calls=AUTOTUNE, deterministic=deterministic)


def _cache(ds: tf.data.Dataset, cfg: DataConfig, key: str) -> tf.data.Dataset:
    """Memory cache, a file cache under `cfg.cache` named by what it holds, or nothing."""
    if cfg.cache == "none":
        return ds
    if cfg.cache == "memory":
        return ds.cache()
    os.makedirs(cfg.cache, exist_ok=True)
    path = claim_cache_prefix(os.path.join(cfg.cache, key))  # clears what a killed run left behind
    return ds.cache(path) if path else ds.cache()


def _cache_key(source: Source, x, shape: tuple, split: str, crop=None) -> str:
    """A file-cache name that changes whenever the examples or their size change (no stale reads)."""
    digest = hashlib.sha256(f"{source.name}|{shape}|{len(x)}|{crop}".encode())
    if source.kind == "files":
        digest.update("\n".join(map(str, x)).encode())
    elif source.kind == "encoded":
        for item in x:
            digest.update(hashlib.sha256(item).digest())
    else:
        digest.update(np.ascontiguousarray(x).tobytes())
    return f"{split}-{digest.hexdigest()[:16]}"


def _finish(ds: tf.data.Dataset, cfg: DataConfig, batch_size: int, training: bool, count: int,
            num_classes: int, deterministic: bool, sharded: bool) -> tf.data.Dataset:
    """Batches already cached examples: shuffle + training batch transform, or a plain float32 cast."""
    if training:
        ds = ds.shuffle(min(cfg.shuffle_buffer, max(count, 1)), seed=cfg.seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if training and not (is_identity(cfg.augment) and not uses_mixing(cfg.augment)):
        # One random int64 per batch, re-drawn each epoch yet reproducible from the seed.
        seeds = tf.data.Dataset.random(seed=cfg.seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, seeds)).map(training_batch_transform(cfg, num_classes),
                                                  num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    else:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    return ds.with_options(pipeline_options(deterministic, sharded)).prefetch(AUTOTUNE)


def train_val_indices(source: Source, cfg: DataConfig) -> tuple:
    """(train, val) index arrays: the source's own validation split if it has one, else a seeded cut."""
    if source.x_val is not None:
        train_idx, val_idx = np.arange(len(source.y_train)), None
    else:
        train_idx, val_idx = split_indices(len(source.y_train), cfg.validation_split, cfg.seed)
    if cfg.limit_train:
        train_idx = train_idx[: cfg.limit_train]
        if val_idx is not None and len(val_idx):
            val_idx = val_idx[: max(1, int(round(cfg.limit_train * cfg.validation_split)))]
    if len(train_idx) == 0:
        raise DataError(f"{source.name}: no training examples left after the validation split")
    return train_idx, val_idx


def check_multi_hot_settings(source: Source, cfg: DataConfig):
    """DataError naming the first `data` setting that assumes one class per example, for multi-hot (N, K)
    labels (multi-label sources); those labels pass through caching, shuffling and batching unchanged."""
    if np.ndim(source.y_train) != 2:
        return
    single_label = {"data.labels_per_class": (cfg.labels_per_class, None), "data.balance": (cfg.balance, "none"),
                    "data.label_noise": (cfg.label_noise, 0.0), "data.augment.mixup": (cfg.augment.mixup, 0.0),
                    "data.augment.cutmix": (cfg.augment.cutmix, 0.0)}
    for name, (value, default) in single_label.items():
        if value != default:
            raise DataError(f"`{name}` assumes one class per example; {source.name} has several labels per image. "
                            f"Received: {name}={value!r}")


def build_datasets(source: Source, cfg: DataConfig, batch_size: int, deterministic: bool = True,
                   num_shards: int = 1, shard_index: int = 0) -> Datasets:
    """Splits `source` into train/val (fixed seed) and builds batched pipelines for train, val and test.

    deterministic: False lets parallel stages reorder elements (faster; `train.deterministic`).
    num_shards, shard_index: keep only this worker's share of every split, cut before decoding
    (see `dataset_fn` for `tf.distribute` input contexts).
    """
    check_multi_hot_settings(source, cfg)
    shape = resolve_image_shape(source, cfg)
    train_idx, val_idx = train_val_indices(source, cfg)
    sharded = num_shards > 1
    num_classes = len(source.class_names)

    def build(x, y, split, training):
        if sharded:
            keep = shard_indices(np.arange(len(y)), num_shards, shard_index)
            x, y = x[keep], y[keep]
        if len(y) == 0:
            return None, 0, None
        key = _cache_key(source, x, shape, split, cfg.center_crop) if cfg.cache not in ("memory", "none") else ""
        examples = _cache(decoded_examples(source, x, y, shape, deterministic, cfg.center_crop), cfg, key)
        ds = _finish(examples, cfg, batch_size, training, len(y), num_classes, deterministic, sharded)
        return ds, len(y), examples

    x, y = source.x_train, source.y_train
    if cfg.labels_per_class:
        train_idx = train_idx[per_class_indices(y[train_idx], cfg.labels_per_class, cfg.seed, source.class_names)]
    if cfg.balance == "sample":  # oversample the smaller classes of the (true) training labels
        train_idx = train_idx[balanced_indices(y[train_idx], cfg.seed)]
    y_train = y[train_idx]
    if cfg.label_noise:
        y_train, _ = noisy_labels(y_train, cfg.label_noise, num_classes, cfg.seed)
    train, num_train, train_examples = build(x[train_idx], y_train, "train", True)
    if val_idx is None:
        val, num_val, _ = build(source.x_val, source.y_val, "val", False)
    else:
        val, num_val, _ = build(x[val_idx], y[val_idx], "val", False)
    test, num_test = None, 0
    if source.x_test is not None and len(source.y_test):
        xt, yt = source.x_test, source.y_test
        if cfg.limit_test:
            xt, yt = xt[: cfg.limit_test], yt[: cfg.limit_test]
        test, num_test, _ = build(xt, yt, "test", False)
    if train is None:
        raise DataError(f"{source.name}: shard {shard_index} of {num_shards} has no training examples")
    # The resumable trainer reads the same cached examples through a step-indexed stream.
    train_batches = StepBatches(train_examples, cfg, batch_size, num_train, training_batch_transform(cfg, num_classes))
    return Datasets(train=train, val=val, test=test, image_shape=shape, class_names=source.class_names,
                    num_train=num_train, num_val=num_val, num_test=num_test, skipped=source.skipped,
                    train_batches=train_batches,
                    class_weight=class_weights(y_train, num_classes) if cfg.balance == "weights" else None)


def dataset_fn(source: Source, cfg: DataConfig, global_batch_size: int, deterministic: bool = True):
    """A `strategy.distribute_datasets_from_function` input function: each input pipeline reads its shard.

    Example:
        train = strategy.distribute_datasets_from_function(dataset_fn(source, cfg.data, 256))
    """
    def make(context: tf.distribute.InputContext) -> tf.data.Dataset:
        data = build_datasets(source, cfg, context.get_per_replica_batch_size(global_batch_size), deterministic,
                              num_shards=context.num_input_pipelines, shard_index=context.input_pipeline_id)
        return data.train
    return make
