"""fmkeras/train/adversarial.py + evaluate/robust.py: FGSM/PGD perturbations and adversarial training."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from fmkeras.data import build_datasets, load_source
from fmkeras.experiment.low_label import set_batchnorm_momentum
from fmkeras.evaluate.robust import robust_accuracy
from fmkeras.train import fit, seed_everything
from fmkeras.transfer import build_classifier
from fmkeras.train.adversarial import fgsm, pgd
from tests.conftest import tiny_config


def _linear_softmax(weights, bias):
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")])
    model.layers[-1].set_weights([weights, bias])
    return model


def test_fgsm_steps_along_the_sign_of_the_loss_gradient():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 3)).astype(np.float32) * 0.01, np.zeros(3, np.float32)
    model = _linear_softmax(w, b)
    x = np.array([[[[100.0], [250.0]], [[3.0], [128.0]]]], np.float32)
    y = np.array([1])
    # d CE / d x for softmax(x W + b): W (p - onehot(y)).
    logits = x.reshape(1, 4) @ w + b
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    grad = (w @ (p[0] - np.eye(3)[1])).reshape(x.shape)
    expected = np.clip(x + 0.1 * 255 * np.sign(grad), 0, 255)
    np.testing.assert_allclose(fgsm(model, x, y, 0.1).numpy(), expected, rtol=1e-6)
    # One-hot labels give the same attack.
    np.testing.assert_allclose(fgsm(model, x, np.eye(3, dtype=np.float32)[y], 0.1).numpy(), expected, rtol=1e-6)


def test_pgd_stays_in_the_epsilon_ball_and_beats_the_clean_loss():
    rng = np.random.default_rng(1)
    model = _linear_softmax(rng.normal(size=(4, 3)).astype(np.float32) * 0.05, np.zeros(3, np.float32))
    x = rng.uniform(0, 255, size=(16, 2, 2, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=16)
    adv = pgd(model, x, y, 0.05, steps=4, seed=tf.constant([1, 2])).numpy()
    assert np.abs(adv - x).max() <= 0.05 * 255 + 1e-3 and adv.min() >= 0 and adv.max() <= 255
    loss = keras.losses.sparse_categorical_crossentropy
    assert float(np.mean(loss(y, model(adv)))) > float(np.mean(loss(y, model(x))))


@pytest.mark.slow
def test_fgsm_training_raises_fgsm_robust_accuracy(tmp_path):
    epsilon = 0.05
    results = {}
    for mode in ("none", "fgsm"):
        cfg = tiny_config(tmp_path / mode, epochs=3, learning_rate=3e-3, batch_size=32, adversarial=mode,
                          adversarial_epsilon=epsilon)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(
            cfg.model, head=dataclasses.replace(cfg.model.head, pooling="flatten")))
        seed_everything(cfg.train)
        data = build_datasets(load_source(cfg.data), cfg.data, cfg.train.batch_size)
        model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
        set_batchnorm_momentum(model, 0.8)  # 45 steps are too few for the default 0.99 moving averages
        result = fit(model, data, cfg.train, str(tmp_path / mode / "run"))
        assert result.model is model
        results[mode] = robust_accuracy(model, data.test, epsilon)
    plain, robust = results["none"], results["fgsm"]
    assert robust["robust_accuracy"] > plain["robust_accuracy"] + 0.05, results
    assert plain["clean_accuracy"] > 0.6 and robust["clean_accuracy"] > 0.6, results
