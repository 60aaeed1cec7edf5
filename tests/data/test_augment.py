"""fmkeras/data/augment.py: the fused affine transform, eagerly and as a layer."""
import numpy as np
import tensorflow as tf

from fmkeras.config import AugmentConfig
from fmkeras.data.augment import FusedAugment, affine_matrices, affine_params, augment_batch


def _ramp(batch=4, size=9):
    x = np.tile(np.arange(size, dtype=np.float32)[None, :], (size, 1))
    return tf.constant(np.stack([x[..., None]] * batch))


def test_identity_config_returns_input():
    images = _ramp()
    assert augment_batch(images, AugmentConfig(), tf.constant([1, 2])) is images


def test_forced_horizontal_flip_mirrors_exactly():
    params = affine_params(2, AugmentConfig(), tf.constant([0, 0], tf.int64))
    params["flip_x"] = tf.ones([2])
    matrices = affine_matrices(params, 9, 9)
    import keras
    flipped = keras.ops.image.affine_transform(_ramp(2), matrices, interpolation="bilinear", fill_mode="nearest")
    np.testing.assert_allclose(flipped.numpy(), _ramp(2).numpy()[:, :, ::-1], atol=1e-4)


def test_shift_moves_content_by_fraction():
    params = affine_params(1, AugmentConfig(), tf.constant([0, 0], tf.int64))
    params["shift_x"] = tf.constant([2 / 9])
    matrices = affine_matrices(params, 9, 9).numpy()
    assert np.isclose(matrices[0, 2], 2.0) and np.allclose(matrices[0, [0, 4]], 1.0)


def test_seeded_batches_repeat_and_differ_by_seed():
    cfg = AugmentConfig(rotation=20, shift=0.1, shear=0.1, zoom=0.2, horizontal_flip=True, brightness=0.1)
    images = tf.random.stateless_uniform([4, 16, 16, 3], seed=[3, 4], maxval=255)
    a = augment_batch(images, cfg, tf.constant([5, 6]))
    b = augment_batch(images, cfg, tf.constant([5, 6]))
    c = augment_batch(images, cfg, tf.constant([5, 7]))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    assert a.shape == images.shape and float(tf.reduce_min(a)) >= 0 and float(tf.reduce_max(a)) <= 255


def test_layer_is_identity_at_inference_and_random_in_training():
    layer = FusedAugment(rotation=30, seed=1)
    images = tf.random.stateless_uniform([2, 8, 8, 1], seed=[1, 1], maxval=255)
    np.testing.assert_array_equal(layer(images, training=False).numpy(), images.numpy())
    assert not np.allclose(layer(images, training=True).numpy(), images.numpy())
    assert FusedAugment.from_config(layer.get_config()).cfg == layer.cfg
