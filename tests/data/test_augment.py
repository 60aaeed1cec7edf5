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


def _matrices(cfg, n=20000, seed=(7, 8), size=32):
    return affine_matrices(affine_params(n, cfg, tf.constant(seed, tf.int64)), size, size).numpy()


def test_rotation_angles_of_the_fused_transform_are_uniform_within_range():
    from scipy import stats
    m = _matrices(AugmentConfig(rotation=20))
    angles = np.degrees(np.arctan2(m[:, 3], m[:, 0]))  # recovered from the composed matrix
    assert np.abs(angles).max() <= 20 + 1e-4 and angles.min() < -19.8 and angles.max() > 19.8
    assert stats.kstest(angles, stats.uniform(loc=-20, scale=40).cdf).pvalue > 0.01
    counts, _ = np.histogram(angles, bins=8, range=(-20, 20))
    assert np.all(np.abs(counts / len(angles) - 1 / 8) < 0.02)
    # Rotation only: the linear part stays orthonormal (no hidden zoom or shear).
    np.testing.assert_allclose(m[:, 0] ** 2 + m[:, 3] ** 2, 1.0, atol=1e-5)


def test_zoom_shift_flip_ranges_of_the_fused_transform():
    from scipy import stats
    zoom = _matrices(AugmentConfig(zoom=0.2))
    assert zoom[:, 0].min() >= 0.8 - 1e-6 and zoom[:, 0].max() <= 1.2 + 1e-6
    assert stats.kstest(zoom[:, 4], stats.uniform(loc=0.8, scale=0.4).cdf).pvalue > 0.01
    assert abs(np.corrcoef(zoom[:, 0], zoom[:, 4])[0, 1]) < 0.05  # x and y zoom drawn independently
    shift = _matrices(AugmentConfig(shift=0.2), size=32)
    assert np.abs(shift[:, 2] / 32).max() <= 0.2 + 1e-6 and np.abs(shift[:, 5] / 32).max() <= 0.2 + 1e-6
    flips = _matrices(AugmentConfig(horizontal_flip=True))
    assert set(np.round(flips[:, 0], 6)) == {-1.0, 1.0} and abs((flips[:, 0] < 0).mean() - 0.5) < 0.02


def test_random_resized_crop_area_and_aspect():
    m = _matrices(AugmentConfig(crop_area_min=0.3))
    area = np.abs(m[:, 0] * m[:, 4] - m[:, 1] * m[:, 3])
    assert area.min() >= 0.3 - 1e-5 and area.max() <= 1 + 1e-5 and area.min() < 0.32
    aspect = m[:, 0] / m[:, 4]
    unclipped = (m[:, 0] < 1) & (m[:, 4] < 1)
    assert aspect[unclipped].min() >= 3 / 4 - 1e-4 and aspect[unclipped].max() <= 4 / 3 + 1e-4
    # The crop stays inside the image, whose pixels (centres 0..31) cover [-0.5, 31.5].
    for x, y in ((0, 0), (31, 0), (0, 31), (31, 31)):
        assert (m[:, 0] * x + m[:, 1] * y + m[:, 2]).min() >= -0.5
        assert (m[:, 3] * x + m[:, 4] * y + m[:, 5]).max() <= 31.5


def test_brightness_and_contrast_stay_in_range():
    images = tf.fill([2000, 2, 2, 1], 128.0)
    bright = augment_batch(images, AugmentConfig(brightness=0.1), tf.constant([1, 2])).numpy()[:, 0, 0, 0] - 128
    assert np.abs(bright).max() <= 25.5 + 1e-3 and bright.min() < -24 and bright.max() > 24
    ramp = tf.constant(np.linspace(64, 192, 4, dtype=np.float32).reshape(1, 2, 2, 1).repeat(500, axis=0))
    out = augment_batch(ramp, AugmentConfig(contrast=0.2), tf.constant([3, 4])).numpy()
    scale = (out[:, 1, 1, 0] - out[:, 0, 0, 0]) / 128.0  # the spread of each image scales by its factor
    assert scale.min() >= 0.8 - 1e-4 and scale.max() <= 1.2 + 1e-4 and np.ptp(scale) > 0.3
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 128.0, atol=1e-3)  # contrast keeps the mean


# RandAugment / TrivialAugment policies and random erasing (fmkeras/data/policy.py).
def test_trivialaugment_draws_one_op_and_randaugment_n_distinct_ops_per_image():
    from fmkeras.data.policy import OPS, draw_ops
    seed = tf.constant([3, 9], tf.int64)
    trivial = tf.stack(list(draw_ops(512, "trivialaugment", 2, 0.8, seed).values()), axis=1).numpy()
    assert ((trivial != 0).sum(axis=1) <= 1).all() and np.abs(trivial).max() <= 0.8
    assert len(set(np.argmax(np.abs(trivial), axis=1))) == len(OPS)  # every op gets drawn
    rand = tf.stack(list(draw_ops(512, "randaugment", 3, 0.5, seed).values()), axis=1).numpy()
    assert ((rand != 0).sum(axis=1) == 3).all() and np.allclose(np.abs(rand[rand != 0]), 0.5)


def test_policy_geometric_ops_join_the_single_resampling(monkeypatch):
    import fmkeras.data.augment as augment
    calls = []
    real = augment.warp_images
    monkeypatch.setattr(augment, "warp_images", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = AugmentConfig(rotation=10, horizontal_flip=True, policy="randaugment", policy_ops=3, policy_magnitude=1.0,
                        erase_prob=0.5)
    images = tf.random.stateless_uniform([16, 12, 12, 1], seed=[1, 2], maxval=255)
    out = augment_batch(images, cfg, tf.constant([4, 5]))
    assert len(calls) == 1  # one resampling for flip + rotation + the policy's rotate/shear/translate
    assert out.shape == images.shape and 0.0 <= float(tf.reduce_min(out)) <= float(tf.reduce_max(out)) <= 255.0
    again = augment_batch(images, cfg, tf.constant([4, 5]))
    np.testing.assert_array_equal(out.numpy(), again.numpy())


def test_shear_y_of_the_fused_transform():
    params = affine_params(1, AugmentConfig(), tf.constant([0, 0], tf.int64))
    params["shear_y"] = tf.constant([0.5])
    m = affine_matrices(params, 9, 9).numpy()[0]
    # input y = y + 0.5 x around the centre; x unchanged
    assert np.allclose(m[[0, 1, 3, 4]], [1.0, 0.0, 0.5, 1.0]) and np.isclose(m[5], -0.5 * 4)


def test_pixel_ops_solarize_posterize_autocontrast():
    from fmkeras.data.policy import OPS, apply_pixel_ops
    images = tf.constant(np.linspace(50, 200, 16, dtype=np.float32).reshape(1, 4, 4, 1))

    def only(name, value):
        return {op: tf.constant([value if op == name else 0.0]) for op in OPS}
    np.testing.assert_allclose(apply_pixel_ops(images, only("solarize", 1.0)).numpy(), 255 - images.numpy())
    posterized = apply_pixel_ops(images, only("posterize", 1.0)).numpy()
    assert np.all(posterized % 16 == 0)  # 4 bits kept
    stretched = apply_pixel_ops(images, only("autocontrast", -0.3)).numpy()
    assert stretched.min() == 0.0 and np.isclose(stretched.max(), 255.0)
    np.testing.assert_allclose(apply_pixel_ops(images, only("identity", 1.0)).numpy(), images.numpy())


def test_random_erasing_fills_one_bounded_rectangle_per_image():
    from fmkeras.data.policy import random_erase
    images = tf.zeros([64, 20, 20, 1]) + 1000.0  # outside the noise range, so erased pixels are visible
    erased = random_erase(images, 1.0, 0.25, tf.constant([1, 2], tf.int64)).numpy()[..., 0]
    for mask in erased < 1000:
        rows, cols = np.where(mask)
        assert mask.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # one filled rectangle
        assert 0.01 * 400 <= mask.sum() <= 0.30 * 400
    kept = random_erase(images, 0.0, 0.25, tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(kept, images.numpy())


def test_policies_run_inside_the_tf_data_pipeline(fashion):
    from fmkeras.config import DataConfig
    from fmkeras.data import build_datasets
    cfg = DataConfig(limit_train=64, validation_split=0.0, augment=AugmentConfig(
        policy="trivialaugment", policy_magnitude=1.0, erase_prob=0.5))
    images, labels = next(iter(build_datasets(fashion, cfg, batch_size=32).train))
    assert images.shape == (32, 28, 28, 1) and images.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255.0
