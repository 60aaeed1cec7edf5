"""fmkeras/evaluate/gradcam.py: heatmaps point at the evidence; a run writes plots/test_gradcam.png."""
import os

import keras
import numpy as np
import pytest

from fmkeras.config import HeadConfig, ModelConfig
from fmkeras.evaluate.gradcam import gradcam
from fmkeras.transfer import build_classifier


def _bright_square_task(seed=0, n=512):
    """Class 1 iff a bright 6x6 square sits in the image (anywhere); class 0 images are dark noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 40, (n, 24, 24, 1)).astype("float32")
    y = rng.integers(0, 2, n)
    corners = rng.integers(0, 18, (n, 2))
    for i in np.flatnonzero(y):
        r, c = corners[i]
        x[i, r:r + 6, c:c + 6] = 255.0
    return x, y, corners


def _heat_on_square(filters, pooling, ratio):
    """Trains a BN-free cnn on the bright-square task; returns the model and the fraction of positives whose
    Grad-CAM heat inside the square is > `ratio` x the heat outside it."""
    keras.utils.set_random_seed(1)
    x, y, corners = _bright_square_task()
    # No BatchNorm: 64 steps are too few for its moving statistics, and inference mode would judge by them.
    model = build_classifier(ModelConfig(backbone_options={"filters": filters, "batch_norm": False},
                                         head=HeadConfig(pooling=pooling)), (24, 24, 1), 2)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] > 0.95
    positives = np.flatnonzero(y)[:32]
    heat = gradcam(model, x[positives], np.ones(len(positives), np.int64))
    assert heat.shape == (len(positives), 24, 24) and heat.min() >= 0 and heat.max() <= 1
    inside = []
    for h, (r, c) in zip(heat, corners[positives]):
        mask = np.zeros((24, 24), bool)
        mask[r:r + 6, c:c + 6] = True
        inside.append(h[mask].mean() > ratio * h[~mask].mean())
    return model, np.mean(inside)


def test_heatmap_of_the_positive_class_covers_the_square():
    _, on_square = _heat_on_square((8, 16), "avg", 2)
    assert on_square > 0.8  # the heat is on the square, not on the background


def test_backbone_without_a_feature_map_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="Grad-CAM needs a layer named 'backbone'"):
        gradcam(model, np.zeros((1, 4), np.float32))


def test_run_writes_gradcam_of_misclassified_test_images(tmp_path):
    import dataclasses

    from fmkeras.experiment import run_training
    from tests.conftest import tiny_config
    cfg = tiny_config(tmp_path)
    cfg = dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, enabled=False))
    report = run_training(cfg)
    path = os.path.join(report["run_dir"], "plots", "test_gradcam.png")
    assert report["test"]["gradcam"] == {"plot": path} and os.path.getsize(path) > 5000


def test_a_backbone_pooled_to_1x1_is_explained_by_its_last_larger_map():
    # The default recipe's net pools 28 -> 14 -> 7 -> 3 -> 1: a heatmap of its 1x1 output would be flat.
    model, on_square = _heat_on_square((8, 16, 16, 16), "flatten", 1.5)
    assert model.get_layer("backbone").output.shape[1:3] == (1, 1)
    assert on_square > 0.8, on_square
