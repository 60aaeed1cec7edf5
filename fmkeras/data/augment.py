"""Random augmentation fused into ONE affine transform per image, resampled once.

Rotation, shift, shear, zoom, flips, a random resized crop and the geometric ops of a
RandAugment/TrivialAugment policy (fmkeras.data.policy) are composed into one 3x3 matrix per
image and applied to a whole batch with a single resampling pass (`fmkeras.data.warp.warp_images`,
XLA-compiled), instead of one resampling per stock Keras layer. Brightness/contrast, the policy's
pixel ops and random erasing follow on the same batch. Randomness is stateless: the same seed
gives the same batch, whatever the parallelism.

Example:
    images = augment_batch(images, AugmentConfig(rotation=20, zoom=0.2), seed=tf.constant([1, 2]))
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from fmkeras.config import AugmentConfig
from fmkeras.data.policy import add_geometric, apply_pixel_ops, draw_ops, random_erase
from fmkeras.data.warp import warp_images

# log(aspect ratio) range of the random resized crop, as in Inception / torchvision.
CROP_LOG_ASPECT = (math.log(3 / 4), math.log(4 / 3))


def is_geometric(cfg: AugmentConfig) -> bool:
    """True when `cfg` moves pixels (needs the resampling pass)."""
    return any((cfg.rotation, cfg.shift, cfg.shear, cfg.zoom, cfg.horizontal_flip, cfg.vertical_flip,
                cfg.crop_area_min, cfg.policy != "none"))


def is_identity(cfg: AugmentConfig) -> bool:
    """True when `cfg` would leave every image unchanged (mixup/cutmix are batch options, see mix.py)."""
    return not (is_geometric(cfg) or cfg.brightness or cfg.contrast or cfg.erase_prob)


def _uniform(shape, seed, low, high, index):
    return tf.random.stateless_uniform(shape, seed=tf.stack([seed[0], seed[1] + index]), minval=low, maxval=high)


def affine_params(batch: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor, ops: dict = None) -> dict:
    """Draws each image's random parameters (angles in radians, shifts as fractions); `ops` (drawn by
    fmkeras.data.policy.draw_ops) adds a policy's geometric ops."""
    shape = [batch]
    zero = tf.zeros(shape)
    angle = math.radians(cfg.rotation)
    params = {
        "angle": _uniform(shape, seed, -angle, angle, 0) if cfg.rotation else zero,
        "shift_x": _uniform(shape, seed, -cfg.shift, cfg.shift, 1) if cfg.shift else zero,
        "shift_y": _uniform(shape, seed, -cfg.shift, cfg.shift, 2) if cfg.shift else zero,
        "shear": _uniform(shape, seed, -cfg.shear, cfg.shear, 3) if cfg.shear else zero,
        "zoom_x": _uniform(shape, seed, 1 - cfg.zoom, 1 + cfg.zoom, 4) if cfg.zoom else zero + 1,
        "zoom_y": _uniform(shape, seed, 1 - cfg.zoom, 1 + cfg.zoom, 5) if cfg.zoom else zero + 1,
        "flip_x": tf.cast(_uniform(shape, seed, 0, 1, 6) < 0.5, tf.float32) if cfg.horizontal_flip else zero,
        "flip_y": tf.cast(_uniform(shape, seed, 0, 1, 7) < 0.5, tf.float32) if cfg.vertical_flip else zero,
    }
    if cfg.crop_area_min:
        _add_resized_crop(params, shape, cfg.crop_area_min, seed)
    if ops is not None:
        add_geometric(params, ops)
    return params


def _add_resized_crop(params: dict, shape, area_min: float, seed):
    """Folds a random resized crop (area in [area_min, 1], aspect 3/4..4/3) into zoom and shift.

    The crop's width/height fractions scale the zoom and its centre offset adds to the shift,
    so the crop costs nothing extra: it is part of the one resampling.
    """
    area = _uniform(shape, seed, area_min, 1.0, 10)
    aspect = tf.exp(_uniform(shape, seed, *CROP_LOG_ASPECT, 11))
    crop_w = tf.minimum(tf.sqrt(area * aspect), 1.0)
    crop_h = tf.minimum(tf.sqrt(area / aspect), 1.0)
    params["crop_w"], params["crop_h"] = crop_w, crop_h
    params["zoom_x"] = params["zoom_x"] * crop_w
    params["zoom_y"] = params["zoom_y"] * crop_h
    params["shift_x"] = params["shift_x"] + _uniform(shape, seed, -0.5, 0.5, 12) * (1 - crop_w)
    params["shift_y"] = params["shift_y"] + _uniform(shape, seed, -0.5, 0.5, 13) * (1 - crop_h)


def affine_matrices(params: dict, height, width) -> tf.Tensor:
    """Composes per-image parameters into (B, 8) output->input projective transforms.

    Like ImageDataGenerator, the matrix maps output pixel coordinates to input ones around
    the image centre: input = C . Flip . Rot . Shear . Zoom . C^-1 . output + shift.
    """
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    cos, sin = tf.cos(params["angle"]), tf.sin(params["angle"])
    zx, zy, k = params["zoom_x"], params["zoom_y"], params["shear"]
    ky = params.get("shear_y", tf.zeros_like(k))
    # Linear part A = Rot . Shear . Zoom, with Rot = [[c, -s], [s, c]], Shear = [[1, k], [ky, 1]].
    a00 = (cos - sin * ky) * zx
    a01 = (cos * k - sin) * zy
    a10 = (sin + cos * ky) * zx
    a11 = (sin * k + cos) * zy
    # Flips negate the matching input axis around the centre.
    fx = 1 - 2 * params["flip_x"]
    fy = 1 - 2 * params["flip_y"]
    a00, a01 = a00 * fx, a01 * fx
    a10, a11 = a10 * fy, a11 * fy
    tx = cx - a00 * cx - a01 * cy + params["shift_x"] * w
    ty = cy - a10 * cx - a11 * cy + params["shift_y"] * h
    zeros = tf.zeros_like(a00)
    return tf.stack([a00, a01, tx, a10, a11, ty, zeros, zeros], axis=1)


def _color(images: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    batch = tf.shape(images)[0]
    if cfg.contrast:
        factor = _uniform([batch, 1, 1, 1], seed, 1 - cfg.contrast, 1 + cfg.contrast, 8)
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * factor + mean
    if cfg.brightness:
        images = images + _uniform([batch, 1, 1, 1], seed, -cfg.brightness, cfg.brightness, 9) * 255.0
    return tf.clip_by_value(images, 0.0, 255.0)


def augment_batch(images: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    """Applies `cfg`'s random transforms to images (B, H, W, C) in [0, 255]; one resample.

    Returns float32 (uint8 input is resampled as uint8 taps, then cast).
    """
    if is_identity(cfg):
        return images
    seed = tf.cast(seed, tf.int64)
    shape = tf.shape(images)
    ops = draw_ops(shape[0], cfg.policy, cfg.policy_ops, cfg.policy_magnitude, seed) if cfg.policy != "none" else None
    if is_geometric(cfg):
        matrices = affine_matrices(affine_params(shape[0], cfg, seed, ops), shape[1], shape[2])
        images = warp_images(images, matrices, fill_mode=cfg.fill_mode, interpolation=cfg.interpolation,
                             dtype=tf.float32)
    images = tf.cast(images, tf.float32)
    if cfg.brightness or cfg.contrast:
        images = _color(images, cfg, seed)
    if ops is not None:
        images = apply_pixel_ops(images, ops)
    if cfg.erase_prob:
        images = random_erase(images, cfg.erase_prob, cfg.erase_max_area, seed)
    return images


@keras.saving.register_keras_serializable(package="fmkeras")
class FusedAugment(keras.layers.Layer):
    """Keras layer form of `augment_batch`; active only when `training=True`.

    Example:
        model = keras.Sequential([FusedAugment(rotation=20, zoom=0.2, horizontal_flip=True), ...])
    """

    def __init__(self, rotation=0.0, shift=0.0, shear=0.0, zoom=0.0, horizontal_flip=False,
                 vertical_flip=False, fill_mode="nearest", brightness=0.0, contrast=0.0, crop_area_min=0.0,
                 interpolation="bilinear", seed=None, policy="none", policy_ops=2, policy_magnitude=0.5,
                 erase_prob=0.0, erase_max_area=0.25, **kwargs):
        super().__init__(**kwargs)
        self.cfg = AugmentConfig(rotation=rotation, shift=shift, shear=shear, zoom=zoom,
                                 horizontal_flip=horizontal_flip, vertical_flip=vertical_flip,
                                 fill_mode=fill_mode, brightness=brightness, contrast=contrast,
                                 crop_area_min=crop_area_min, interpolation=interpolation, policy=policy,
                                 policy_ops=policy_ops, policy_magnitude=policy_magnitude, erase_prob=erase_prob,
                                 erase_max_area=erase_max_area)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        seed = keras.random.randint([2], 0, 2**30, seed=self.seed_generator)
        return augment_batch(tf.cast(images, tf.float32), self.cfg, seed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        fields = {k: v for k, v in self.cfg.__dict__.items() if k not in ("mixup", "cutmix")}
        return {**super().get_config(), **fields, "seed": self.seed}
