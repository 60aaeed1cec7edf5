"""data.balance (fmkeras/data/labels.py, pipeline.py, train/trainer.py): an imbalanced Fashion-MNIST split."""
import numpy as np
import pytest

from fmkeras.config import DataConfig, HeadConfig, ModelConfig, TrainConfig
from fmkeras.data import build_datasets
from fmkeras.data.arrays import array_source
from fmkeras.data.labels import balanced_indices, class_weights
from fmkeras.evaluate.metrics import classification_report, predict_dataset
from fmkeras.train import fit, seed_everything
from fmkeras.transfer import build_classifier

# T-shirt/top, Pullover, Shirt: look alike, so a rare class is easily swallowed by the others.
CLASSES, COUNTS = (0, 2, 6), (800, 800, 50)


def test_balanced_indices_and_class_weights():
    labels = np.array([0] * 6 + [1] * 2 + [2])
    counts = np.bincount(labels[balanced_indices(labels, seed=1)])
    assert counts.tolist() == [6, 6, 6]
    assert set(np.flatnonzero(labels == 1)) <= set(balanced_indices(labels, seed=1))  # every example kept
    weights = class_weights(labels, 4)
    assert weights == pytest.approx({0: 9 / 18, 1: 9 / 6, 2: 9 / 3})  # class 3 absent: no weight


@pytest.fixture(scope="module")
def imbalanced(fashion):
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.choice(np.flatnonzero(fashion.y_train == c), n, replace=False)
                            for c, n in zip(CLASSES, COUNTS)])
    test = np.concatenate([np.flatnonzero(fashion.y_test == c)[:300] for c in CLASSES])
    remap = {c: i for i, c in enumerate(CLASSES)}
    return array_source(fashion.x_train[train], np.array([remap[c] for c in fashion.y_train[train]]),
                        fashion.x_test[test], np.array([remap[c] for c in fashion.y_test[test]]),
                        class_names=("T-shirt/top", "Pullover", "Shirt"), name="imbalanced")


def _macro_f1(source, balance, tmp_path):
    cfg = TrainConfig(epochs=4, batch_size=32, learning_rate=3e-3, verbose=0, seed=3)
    seed_everything(cfg)
    data = build_datasets(source, DataConfig(validation_split=0.0, balance=balance), cfg.batch_size)
    model = build_classifier(ModelConfig(backbone_options={"filters": (8, 16)}, head=HeadConfig(pooling="avg")),
                             data.image_shape, 3)
    fit(model, data, cfg, str(tmp_path / balance))
    probabilities, labels, _ = predict_dataset(lambda x: model(x, training=False), data.test)
    return classification_report(probabilities, labels, source.class_names), data


@pytest.mark.slow
def test_balancing_an_imbalanced_split_improves_macro_f1(imbalanced, tmp_path):
    plain, plain_data = _macro_f1(imbalanced, "none", tmp_path)
    weighted, weighted_data = _macro_f1(imbalanced, "weights", tmp_path)
    sampled, sampled_data = _macro_f1(imbalanced, "sample", tmp_path)
    assert plain_data.class_weight is None and weighted_data.class_weight[2] == pytest.approx(1650 / (3 * 50))
    assert sampled_data.num_train == 3 * 800  # the rare class oversampled to 800
    # measured: none 0.368 (Shirt recall 0.0), weights 0.599 (0.22), sample 0.601 (0.28)
    print({k: (r["macro_f1"], r["per_class"]["Shirt"]["recall"]) for k, r in
           (("none", plain), ("weights", weighted), ("sample", sampled))})
    assert plain["per_class"]["Shirt"]["recall"] < 0.3  # the rare class is mostly missed
    for balanced in (weighted, sampled):
        assert balanced["per_class"]["Shirt"]["recall"] > plain["per_class"]["Shirt"]["recall"] + 0.1
        assert balanced["macro_f1"] > plain["macro_f1"] + 0.05
