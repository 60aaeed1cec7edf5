"""fmkeras/pretrain: NT-Xent against a hand computation, SimCLR views, pretrain -> save -> load round trip."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from fmkeras.config import ModelConfig, PretrainConfig
from fmkeras.pretrain import nt_xent_loss, two_views
from fmkeras.transfer import BACKBONE_LAYER, build_classifier
from tests.cli.test_cli import run_in_process


def _numpy_nt_xent(z1, z2, temperature):
    """SimCLR's loss written out: for each of the 2N views, -log softmax over the other 2N-1 views."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    losses = []
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        sims = {k: float(z[i] @ z[k]) / temperature for k in range(2 * n) if k != i}
        denominator = sum(np.exp(s) for s in sims.values())
        losses.append(-np.log(np.exp(sims[partner]) / denominator))
    return float(np.mean(losses))


def test_nt_xent_matches_hand_computation():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    for temperature in (0.1, 0.5, 1.0):
        got = float(nt_xent_loss(tf.constant(z1), tf.constant(z2), temperature))
        assert got == pytest.approx(_numpy_nt_xent(z1, z2, temperature), rel=1e-5)


def test_nt_xent_two_orthogonal_pairs_exact_value():
    # Views 0,2 = e1 and views 1,3 = e2: the partner has similarity 1, the two others 0.
    z1 = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    expected = -np.log(np.exp(1 / 0.5) / (np.exp(1 / 0.5) + 2 * np.exp(0.0)))
    assert float(nt_xent_loss(z1, z1, 0.5)) == pytest.approx(expected, rel=1e-6)
    # Collapsed (all equal) projections cannot tell the partner apart: loss = log(2N - 1).
    same = tf.ones((4, 3))
    assert float(nt_xent_loss(same, same, 0.2)) == pytest.approx(np.log(7), rel=1e-5)


def test_two_views_are_random_reproducible_and_in_range(fashion):
    images = tf.constant(fashion.x_train[:8], tf.float32)
    cfg = PretrainConfig()
    v1, v2 = two_views(images, cfg, tf.constant([1, 2], tf.int64))
    assert v1.shape == v2.shape == images.shape
    assert float(tf.reduce_min(v1)) >= 0 and float(tf.reduce_max(v1)) <= 255
    assert float(tf.reduce_mean(tf.abs(v1 - v2))) > 1.0, "the two views must differ"
    again, _ = two_views(images, cfg, tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(v1.numpy(), again.numpy())
    # Inside tf.data (graph mode) the same seed gives the same views.
    ds = tf.data.Dataset.from_tensors(images).map(lambda x: two_views(x, cfg, tf.constant([1, 2], tf.int64)))
    np.testing.assert_allclose(next(iter(ds))[0].numpy(), v1.numpy(), atol=1e-3)


@pytest.mark.parametrize("method", ["simclr", "supervised"])
def test_pretrain_cli_saves_backbone_that_train_loads(tmp_path, capsys, fashion_npz, method):
    out = tmp_path / "bb" / "backbone.keras"
    options = "--set=model.backbone_options={filters: [4, 8]}"
    assert run_in_process(
        "pretrain", f"--data=npz:{fashion_npz}", f"--pretrain_method={method}", "--pretrain_epochs=1",
        f"--pretrain_output={out}", options, "--set=pretrain.batch_size=64", "--set=train.verbose=0",
        f"--set=run_root={tmp_path / 'runs'}", "--set=data.limit_train=256") == 0
    assert "backbone:" in capsys.readouterr().out
    info = json.loads((tmp_path / "bb" / "backbone.json").read_text())
    assert info["method"] == method and info["backbone"] == "cnn" and info["input_shape"] == [28, 28, 1]
    assert "scale_to_unit" in info["preprocessing"] and f"--weights={out}" in info["use_with"]
    saved = keras.saving.load_model(out, safe_mode=True)
    # What `fmkeras train --weights=out` builds: a classifier whose backbone holds the saved weights.
    model = build_classifier(ModelConfig(backbone="cnn", backbone_options={"filters": (4, 8)}, weights=str(out)),
                             (28, 28, 1), 10)
    loaded = model.get_layer(BACKBONE_LAYER).get_weights()
    assert len(loaded) == len(saved.get_weights()) > 0
    for a, b in zip(loaded, saved.get_weights()):
        np.testing.assert_array_equal(a, b)
    fresh = build_classifier(ModelConfig(backbone="cnn", backbone_options={"filters": (4, 8)}), (28, 28, 1), 10)
    assert not np.allclose(fresh.get_layer(BACKBONE_LAYER).get_weights()[0], loaded[0])
    runs = os.listdir(tmp_path / "runs")
    metrics = json.loads((tmp_path / "runs" / runs[0] / "metrics.json").read_text())
    assert metrics["images"] == 256 and np.isfinite(metrics["history"]["loss"][0])


def test_random_erasing_fills_one_rectangle_per_chosen_image():
    from fmkeras.pretrain.views import random_erasing
    images = tf.fill((16, 12, 12, 1), 100.0)
    erased = random_erasing(images, 1.0, 0.25, tf.constant([3, 4], tf.int64)).numpy()
    changed = np.abs(erased - 100.0) > 1e-3
    for mask in changed[..., 0]:
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        assert 0 < mask.sum() <= 0.25 * 144 + 12  # one box, at most max_area (+ rounding of its edge)
        # The changed pixels form a rectangle: its bounding box is (almost) all changed.
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.mean() > 0.95
    assert erased.min() >= 0 and erased.max() <= 255
    np.testing.assert_array_equal(random_erasing(images, 0.0, 0.25, tf.constant([3, 4], tf.int64)).numpy(),
                                  images.numpy())


def test_view_noise_and_erasing_options_change_the_views(fashion):
    import dataclasses
    images = tf.constant(fashion.x_train[:8], tf.float32)
    seed = tf.constant([1, 2], tf.int64)
    plain = two_views(images, PretrainConfig(), seed)[0].numpy()
    noisy = two_views(images, PretrainConfig(noise_stddev=10.0), seed)[0].numpy()
    erased = two_views(images, PretrainConfig(erase_prob=1.0), seed)[0].numpy()
    assert 5 < np.abs(noisy - plain).mean() < 12 and noisy.min() >= 0 and noisy.max() <= 255
    assert (np.abs(erased - plain) > 1).mean() > 0.01  # pixels inside the erased boxes
    cfg = dataclasses.replace(PretrainConfig(), erase_prob=0.5, noise_stddev=5.0)
    np.testing.assert_allclose(two_views(images, cfg, seed)[1].numpy(), two_views(images, cfg, seed)[1].numpy())


def test_projection_head_batch_norm_option():
    from fmkeras.pretrain.simclr import build_projection_head
    plain = build_projection_head(8, (16, 4))
    normed = build_projection_head(8, (16, 4), batch_norm=True)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in plain.layers)
    assert [l.name for l in normed.layers if isinstance(l, keras.layers.BatchNormalization)] == ["projection_bn1"]
    assert normed.output_shape == plain.output_shape == (None, 4)


def test_encoder_pooling_follows_the_option():
    from fmkeras.pretrain.simclr import build_encoder
    cfg = ModelConfig(backbone="cnn", backbone_options={"filters": (4, 8)})
    assert build_encoder(cfg, (16, 16, 1)).output_shape == (None, 8)
    assert build_encoder(cfg, (16, 16, 1), "flatten").output_shape == (None, 4 * 4 * 8)
