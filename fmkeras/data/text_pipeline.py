"""tf.data pipelines for text: split train/validation with a fixed seed, cache, shuffle, batch, prefetch.

Batches are (tf.string texts (N,), int64 labels (N,)); tokenizing happens inside the model
(`TextVectorization`), so the exported model takes raw strings exactly like training did.

Example:
    data = build_text_datasets(load_text_source(cfg.data, cfg.text), cfg.data, batch_size=64)
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

from fmkeras.config import DataConfig
from fmkeras.data.augment import is_identity
from fmkeras.data.pipeline import Datasets, train_val_indices
from fmkeras.data.source import Source
from fmkeras.errors import ConfigError, DataError

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class TextDatasets(Datasets):
    """`Datasets` of (texts, labels) batches; `image_shape` is None and `train_texts` holds the
    training split's texts for fitting the vocabulary (never validation or test texts)."""
    train_texts: Optional[np.ndarray] = None
    train_labels: Optional[np.ndarray] = None  # the arrays behind `train` / `val`, for models fitted outside
    val_texts: Optional[np.ndarray] = None     # of Keras' fit (text.linear_member)
    val_labels: Optional[np.ndarray] = None


def _dataset(texts, labels, cfg: DataConfig, batch_size: int, training: bool) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(texts, dtype=str), np.asarray(labels, np.int64)))
    if cfg.cache == "memory":
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(cfg.shuffle_buffer, max(len(labels), 1)), seed=cfg.seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def build_text_datasets(source: Source, cfg: DataConfig, batch_size: int) -> TextDatasets:
    """Splits `source` into train/val (fixed seed) and batches train, val and test texts."""
    if source.kind != "text":
        raise DataError(f"{source.name} is not a text source")
    if not is_identity(cfg.augment):
        raise ConfigError("`data.augment` applies to images only; clear it for text sources "
                          "(or start from --recipe=text_debian)")
    train_idx, val_idx = train_val_indices(source, cfg)  # the same cut as images (and `fmkeras tune`'s retrain)
    x, y = source.x_train, source.y_train
    xv, yv = (source.x_val, source.y_val) if val_idx is None else (x[val_idx], y[val_idx])
    train = _dataset(x[train_idx], y[train_idx], cfg, batch_size, True)
    val = _dataset(xv, yv, cfg, batch_size, False) if len(yv) else None
    test, num_test = None, 0
    if source.x_test is not None and len(source.y_test):
        xt, yt = source.x_test, source.y_test
        if cfg.limit_test:
            xt, yt = xt[: cfg.limit_test], yt[: cfg.limit_test]
        test, num_test = _dataset(xt, yt, cfg, batch_size, False), len(yt)
    return TextDatasets(train=train, val=val, test=test, image_shape=None, class_names=source.class_names,
                        num_train=len(train_idx), num_val=len(yv), num_test=num_test, skipped=source.skipped,
                        train_texts=np.asarray(x[train_idx], dtype=str), train_labels=np.asarray(y[train_idx]),
                        val_texts=np.asarray(xv, dtype=str), val_labels=np.asarray(yv))


def vectorized_datasets(data: TextDatasets, vectorizers: list) -> TextDatasets:
    """`data` with each batch's texts replaced by the outputs of `vectorizers` (a tuple, one per layer),
    tokenized in the input pipeline; the arrays behind it (`train_texts`, ...) stay as they are."""
    def vectorize(texts, labels):
        return tuple(vectorizer(texts) for vectorizer in vectorizers), labels

    def mapped(ds):
        return None if ds is None else ds.map(vectorize, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    return dataclasses.replace(data, train=mapped(data.train), val=mapped(data.val), test=mapped(data.test))
