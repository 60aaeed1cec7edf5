"""fmkeras/data/mix.py: MixUp/CutMix images and soft labels agree."""
import numpy as np
import tensorflow as tf

from fmkeras.config import AugmentConfig
from fmkeras.data.mix import cutmix, mix_batch, sample_beta


def _batch(n=6, size=8):
    # Image i is constant i * 10, so every output pixel tells which images it came from.
    images = tf.constant(np.arange(n, dtype=np.float32)[:, None, None, None] * 10 * np.ones((1, size, size, 3)))
    return tf.cast(images, tf.float32), tf.constant(np.arange(n) % 3, tf.int64)


def test_beta_samples_in_unit_interval_with_right_mean():
    lam = sample_beta([20000], 0.4, tf.constant([1, 2])).numpy()
    assert lam.min() >= 0 and lam.max() <= 1 and abs(lam.mean() - 0.5) < 0.02
    assert np.mean((lam < 0.1) | (lam > 0.9)) > 0.4  # alpha < 1 pushes mass to the ends


def test_mixup_images_and_labels_use_the_same_weight():
    images, labels = _batch()
    mixed, soft = mix_batch(images, labels, AugmentConfig(mixup=0.4), num_classes=3, seed=tf.constant([3, 4]))
    assert soft.shape == (6, 3) and np.allclose(soft.numpy().sum(axis=1), 1.0)
    values = mixed.numpy()[:, 0, 0, 0]
    partner = np.roll(np.arange(6), 1)
    lam = (values - partner * 10) / (np.arange(6) * 10 - partner * 10)  # solve the blend for lam
    expected = lam[:, None] * np.eye(3)[labels.numpy()] + (1 - lam[:, None]) * np.eye(3)[labels.numpy()[partner]]
    np.testing.assert_allclose(soft.numpy(), expected, atol=1e-4)


def test_cutmix_label_weight_is_the_pasted_area():
    images, labels = _batch(size=16)
    lam = tf.constant([0.5] * 6)
    mixed, kept = cutmix(images, lam, tf.constant([5, 6]))
    own = (mixed.numpy()[..., 0] == images.numpy()[:, :1, :1, 0]).mean(axis=(1, 2))
    np.testing.assert_allclose(kept.numpy(), own, atol=1e-6)
    _, soft = mix_batch(images, labels, AugmentConfig(cutmix=1.0), 3, tf.constant([5, 6]))
    assert soft.shape == (6, 3) and np.allclose(soft.numpy().sum(axis=1), 1.0)


def test_both_on_picks_one_method_per_batch_and_repeats_by_seed():
    images, labels = _batch()
    cfg = AugmentConfig(mixup=0.4, cutmix=1.0)
    a = mix_batch(images, labels, cfg, 3, tf.constant([8, 9]))
    b = mix_batch(images, labels, cfg, 3, tf.constant([8, 9]))
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
