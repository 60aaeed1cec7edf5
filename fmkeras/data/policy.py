"""RandAugment / TrivialAugment-style policies and random erasing, vectorized over a batch.

Each image draws its own operations: TrivialAugment (Müller & Hutter 2021) one op with a magnitude
uniform in [0, `policy_magnitude`]; RandAugment (Cubuk et al. 2020) `policy_ops` distinct ops at
magnitude `policy_magnitude` (a fraction of each op's maximum, RandAugment's M/30). Geometric ops
(rotate <= 30 deg, shear x/y <= 0.3, translate x/y <= 30%) only change the image's affine parameters, so
they are folded into the ONE resampling fmkeras.data.augment already does; the pixel ops (brightness,
contrast, solarize, posterize, autocontrast) follow on the warped batch; identity is one of the choices.
Random erasing (Zhong et al. 2020) then fills, with probability `erase_prob`, one rectangle per image
(2%..`erase_max_area` of the area, aspect 0.3..3.3) with uniform noise.

Randomness is stateless: seeds index `tf.random.stateless_uniform`, as in augment.py.
"""
from __future__ import annotations

import math

import tensorflow as tf

GEOMETRIC_OPS = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
PIXEL_OPS = ("brightness", "contrast", "solarize", "posterize", "autocontrast")
OPS = ("identity", *GEOMETRIC_OPS, *PIXEL_OPS)
MAX_ROTATE_DEG, MAX_SHEAR, MAX_TRANSLATE, MAX_COLOR = 30.0, 0.3, 0.3, 0.9
ERASE_AREA_MIN, ERASE_LOG_ASPECT = 0.02, (math.log(0.3), math.log(1 / 0.3))


def _uniform(shape, seed, index, low=0.0, high=1.0):
    return tf.random.stateless_uniform(shape, seed=tf.stack([seed[0], seed[1] + index]), minval=low, maxval=high)


def draw_ops(batch, policy: str, num_ops: int, magnitude: float, seed) -> dict:
    """op name -> (B,) signed magnitude in [-1, 1] (0 = op not drawn for that image)."""
    count = len(OPS)
    if policy == "trivialaugment":
        chosen = tf.one_hot(tf.argmax(_uniform([batch, count], seed, 40), axis=1), count)
        strength = _uniform([batch, 1], seed, 41) * magnitude
    else:  # randaugment: the num_ops ops with the smallest random keys, all at the same magnitude
        keys = _uniform([batch, count], seed, 40)
        ranks = tf.argsort(tf.argsort(keys, axis=1), axis=1)
        chosen = tf.cast(ranks < num_ops, tf.float32)
        strength = tf.fill([batch, 1], float(magnitude))
    sign = tf.where(_uniform([batch, count], seed, 42) < 0.5, -1.0, 1.0)
    signed = chosen * strength * sign
    return {name: signed[:, i] for i, name in enumerate(OPS)}


def add_geometric(params: dict, ops: dict):
    """Folds the drawn geometric ops into augment.affine_params' per-image parameters."""
    params["angle"] = params["angle"] + ops["rotate"] * math.radians(MAX_ROTATE_DEG)
    params["shear"] = params["shear"] + ops["shear_x"] * MAX_SHEAR
    params["shear_y"] = params.get("shear_y", tf.zeros_like(params["shear"])) + ops["shear_y"] * MAX_SHEAR
    params["shift_x"] = params["shift_x"] + ops["translate_x"] * MAX_TRANSLATE
    params["shift_y"] = params["shift_y"] + ops["translate_y"] * MAX_TRANSLATE


def apply_pixel_ops(images: tf.Tensor, ops: dict) -> tf.Tensor:
    """Brightness, contrast, solarize, posterize, autocontrast on float images in [0, 255]; per image."""
    def per_image(v):
        return v[:, None, None, None]
    on = {name: per_image(tf.cast(ops[name] != 0, tf.float32)) for name in PIXEL_OPS}
    size = {name: per_image(tf.abs(ops[name])) for name in PIXEL_OPS}
    images = images + per_image(ops["brightness"]) * MAX_COLOR * 0.5 * 255.0
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    images = (images - mean) * (1.0 + per_image(ops["contrast"]) * MAX_COLOR) + mean
    images = tf.clip_by_value(images, 0.0, 255.0)
    threshold = 255.0 * (1.0 - size["solarize"])  # magnitude 1 inverts every pixel
    images = tf.where((on["solarize"] > 0) & (images >= threshold), 255.0 - images, images)
    bits = 8.0 - tf.round(4.0 * size["posterize"])  # keep 8..4 bits
    step = tf.pow(2.0, 8.0 - bits)
    images = tf.where(on["posterize"] > 0, tf.floor(images / step) * step, images)
    low = tf.reduce_min(images, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2], keepdims=True)
    stretched = (images - low) * 255.0 / tf.maximum(high - low, 1.0)
    return tf.where(on["autocontrast"] > 0, stretched, images)


def random_erase(images: tf.Tensor, probability: float, max_area: float, seed) -> tf.Tensor:
    """With `probability`, one noise-filled rectangle per image (area ERASE_AREA_MIN..max_area of it)."""
    shape = tf.shape(images)
    batch, height, width = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    area = _uniform([batch], seed, 50, ERASE_AREA_MIN, max(max_area, ERASE_AREA_MIN)) * height * width
    aspect = tf.exp(_uniform([batch], seed, 51, *ERASE_LOG_ASPECT))
    box_h = tf.minimum(tf.round(tf.sqrt(area * aspect)), height)
    box_w = tf.minimum(tf.round(tf.sqrt(area / aspect)), width)
    top = tf.floor(_uniform([batch], seed, 52) * (height - box_h + 1))
    left = tf.floor(_uniform([batch], seed, 53) * (width - box_w + 1))
    rows, cols = tf.range(height), tf.range(width)
    inside_y = (rows[None, :] >= top[:, None]) & (rows[None, :] < (top + box_h)[:, None])
    inside_x = (cols[None, :] >= left[:, None]) & (cols[None, :] < (left + box_w)[:, None])
    erase = _uniform([batch], seed, 54) < probability
    mask = inside_y[:, :, None, None] & inside_x[:, None, :, None] & erase[:, None, None, None]
    noise = tf.random.stateless_uniform(shape, seed=tf.stack([seed[0], seed[1] + 55]), maxval=255.0)
    return tf.where(mask, noise, images)
