"""fmkeras/data/warp.py: the XLA warp samples like ImageProjectiveTransformV3."""
import numpy as np
import pytest
import tensorflow as tf

from fmkeras.config import AugmentConfig
from fmkeras.data.augment import affine_matrices, affine_params
from fmkeras.data.warp import warp_images


def _reference(images, transforms, fill_mode, interpolation="BILINEAR"):
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32), transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation=interpolation, fill_mode=fill_mode.upper())


@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (2, 17, 23, 3)])
def test_matches_tf_kernel_for_nearest_fill(shape):
    cfg = AugmentConfig(rotation=30, shift=0.2, shear=0.2, zoom=0.3, horizontal_flip=True)
    images = tf.cast(tf.random.stateless_uniform(shape, seed=[1, 2], maxval=256, dtype=tf.int32), tf.uint8)
    transforms = affine_matrices(affine_params(shape[0], cfg, tf.constant([3, 4], tf.int64)), shape[1], shape[2])
    out = warp_images(images, transforms, dtype=tf.float32)
    assert out.dtype == tf.float32 and out.shape == shape
    np.testing.assert_allclose(out.numpy(), _reference(images, transforms, "nearest").numpy(), atol=2e-3)
    nearest = warp_images(images, transforms, interpolation="nearest", dtype=tf.float32)
    ref = _reference(images, transforms, "nearest", "NEAREST").numpy()
    assert np.mean(nearest.numpy() == ref) > 0.98  # rounding ties at .5 may pick the other pixel


def test_constant_fill_and_uint8_round_trip():
    images = tf.fill([1, 6, 6, 1], tf.constant(200, tf.uint8))
    shift_right = tf.constant([[1, 0, -3, 0, 1, 0, 0, 0]], tf.float32)  # output x reads input x - 3
    out = warp_images(images, shift_right, fill_mode="constant")
    assert out.dtype == tf.uint8
    assert (out.numpy()[0, :, :3, 0] == 0).all() and (out.numpy()[0, :, 3:, 0] == 200).all()


def test_wrap_and_reflect_fold_indices():
    row = tf.reshape(tf.range(4, dtype=tf.float32), [1, 1, 4, 1])
    shift = tf.constant([[1, 0, 2, 0, 1, 0, 0, 0]], tf.float32)  # output x reads input x + 2
    wrapped = warp_images(row, shift, fill_mode="wrap").numpy().ravel()
    reflected = warp_images(row, shift, fill_mode="reflect").numpy().ravel()
    np.testing.assert_array_equal(wrapped, [2, 3, 0, 1])
    np.testing.assert_array_equal(reflected, [2, 3, 3, 2])


def test_rejects_unknown_modes():
    with pytest.raises(ValueError, match="`fill_mode` must be one of nearest, constant, reflect, wrap"):
        warp_images(tf.zeros([1, 2, 2, 1]), tf.zeros([1, 8]), fill_mode="mirror")
