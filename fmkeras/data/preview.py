"""A PNG grid of augmented training samples: check what the model will see before training.

Row i shows training image i: the original, then `variants` independent draws of the
training batch transform (fused warp, brightness/contrast, MixUp/CutMix) exactly as the
pipeline applies it.

Example:
    write_augmentation_preview(cfg.data, "preview.png", images=8, variants=6)
"""
from __future__ import annotations

import os

import tensorflow as tf

from fmkeras.config import DataConfig
from fmkeras.data.pipeline import decoded_examples, resolve_image_shape
from fmkeras.data.training_batch import training_batch_transform
from fmkeras.data.sources import load_source
from fmkeras.errors import DataError

PAD = 2


def augmentation_grid(cfg: DataConfig, images: int = 8, variants: int = 6, seed: int = 0) -> tf.Tensor:
    """uint8 (rows*(H+PAD), cols*(W+PAD), C) grid: originals in column 0, augmented draws after."""
    source = load_source(cfg)
    count = min(images, len(source.y_train))
    if count == 0:
        raise DataError(f"{source.name}: no training images to preview")
    shape = resolve_image_shape(source, cfg)
    ds = decoded_examples(source, source.x_train[:count], source.y_train[:count], shape).batch(count)
    originals, labels = next(iter(ds))
    transform = training_batch_transform(cfg, len(source.class_names))
    columns = [tf.cast(originals, tf.float32)]
    for k in range(variants):
        augmented, _ = transform((originals, labels), tf.constant(seed * 1000 + k + 1, tf.int64))
        columns.append(augmented)
    grid = tf.stack(columns, axis=1)  # (rows, cols, H, W, C)
    grid = tf.pad(grid, [[0, 0], [0, 0], [0, PAD], [0, PAD], [0, 0]], constant_values=255.0)
    rows, cols, h, w, c = grid.shape
    grid = tf.reshape(tf.transpose(grid, [0, 2, 1, 3, 4]), [rows * h, cols * w, c])
    return tf.cast(tf.clip_by_value(tf.round(grid), 0, 255), tf.uint8)


def write_augmentation_preview(cfg: DataConfig, path: str, images: int = 8, variants: int = 6,
                               seed: int = 0) -> str:
    """Writes `augmentation_grid` as a PNG to `path` (parent directories are created); returns path."""
    grid = augmentation_grid(cfg, images, variants, seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(grid))
    return path
