"""fmkeras/train/losses.py: noise-robust losses and label smoothing against hand computations."""
import numpy as np
import pytest

from fmkeras.config import TrainConfig
from fmkeras.train.losses import SoftBootstrap, SymmetricCrossEntropy, build_loss

P = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
Y = np.array([0, 1])


def test_symmetric_cross_entropy_by_hand():
    ce = -np.log([0.7, 0.1])
    rce = np.array([-(0.2 + 0.1) * -4.0, -(0.1 + 0.8) * -4.0])  # -sum_{k != y} p_k * A
    expected = np.mean(0.1 * ce + 1.0 * rce)
    assert float(SymmetricCrossEntropy()(Y, P)) == pytest.approx(expected, rel=1e-5)
    one_hot = np.eye(3, dtype=np.float32)[Y]
    assert float(SymmetricCrossEntropy()(one_hot, P)) == pytest.approx(expected, rel=1e-5)


def test_soft_bootstrap_by_hand():
    target = 0.95 * np.eye(3)[Y] + 0.05 * P
    expected = np.mean(-(target * np.log(P)).sum(axis=1))
    assert float(SoftBootstrap()(Y, P)) == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_is_crossentropy_against_smoothed_targets():
    loss = build_loss(TrainConfig(label_smoothing=0.1))
    one_hot = np.eye(3, dtype=np.float32)[Y]
    smoothed = one_hot * 0.9 + 0.1 / 3
    expected = np.mean(-(smoothed * np.log(P)).sum(axis=1))
    assert float(loss(one_hot, P)) == pytest.approx(expected, rel=1e-5)
    assert float(build_loss(TrainConfig())(Y, P)) == pytest.approx(np.mean(-np.log([0.7, 0.1])), rel=1e-5)


def test_compile_model_uses_the_configured_loss():
    import keras

    from fmkeras.train import compile_model
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    compile_model(model, TrainConfig(loss="symmetric"), total_steps=10)
    assert isinstance(model.loss, SymmetricCrossEntropy)
    compile_model(model, TrainConfig(loss="bootstrap", label_smoothing=0.1), total_steps=10)
    assert isinstance(model.loss, SoftBootstrap)
