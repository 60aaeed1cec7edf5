"""fmkeras/backbones/*: every registered backbone builds, trains one step and exports at 32 px."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from fmkeras.backbones import get_backbone, list_backbones
from fmkeras.backbones.blocks import backbone_blocks
from fmkeras.config import HeadConfig, ModelConfig, TrainConfig
from fmkeras.export import export_saved_model
from fmkeras.train import compile_model
from fmkeras.transfer import BACKBONE_LAYER, build_classifier

# Small widths keep the custom nets fast; the keras.applications ones have fixed sizes.
TINY_OPTIONS = {
    "cnn": {"filters": (4, 8)},
    "lenet": {},
    "alexnet": {"filters": (8, 8, 8, 8, 8)},
    "resnet18": {"widths": (4, 8, 8, 8)},
    "resnet34": {"widths": (4, 4, 8, 8)},
    "resnet50v2": {},
    "vgg16": {},
    "efficientnet_lite0": {},
    "vit": {"patch_size": 8, "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32},
}
SLOW = {"resnet18", "resnet34", "resnet50v2", "vgg16", "efficientnet_lite0"}  # building + exporting: > 10 s on 2 shared cores


def test_every_registered_backbone_is_covered():
    # Text backbones take token ids, not pixels; tests/transfer/test_text_classifier* cover them.
    images = [name for name in list_backbones() if get_backbone(name).modality == "image"]
    assert sorted(TINY_OPTIONS) == images


def test_keras_applications_parameter_counts_match_exactly():
    # Counts of keras.applications' notop models (also the published numbers).
    for name, reference, published in (("resnet50v2", keras.applications.ResNet50V2, 23_564_800),
                                       ("vgg16", keras.applications.VGG16, 14_714_688)):
        ours = get_backbone(name).builder((32, 32, 3))
        theirs = reference(include_top=False, weights=None, input_shape=(32, 32, 3))
        assert ours.count_params() == theirs.count_params() == published, name
        del ours, theirs


def test_basic_block_resnets_match_torchvision_parameter_counts():
    # torchvision resnet18/34 minus the fc layer; Keras' BN moving stats are non-trainable.
    for name, trainable in (("resnet18", 11_176_512), ("resnet34", 21_284_672)):
        model = get_backbone(name).builder((32, 32, 3))
        assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == trainable, name
        assert model.output_shape == (None, 1, 1, 512)
    small = get_backbone("resnet18").builder((32, 32, 3), widths=(4, 8, 8, 8), small_input=True)
    assert small.output_shape == (None, 4, 4, 8)


def test_blocks_follow_keras_applications_names():
    resnet = get_backbone("resnet18").builder((32, 32, 3), widths=(4, 4, 4, 4))
    names = [name for name, _ in backbone_blocks(resnet)]
    assert names == ["stem"] + [f"conv{s}_block{b}" for s in (2, 3, 4, 5) for b in (1, 2)]
    lenet = get_backbone("lenet").builder((32, 32, 1))
    assert [name for name, _ in backbone_blocks(lenet)] == ["block1", "block2"]
    assert lenet.output_shape == (None, 5, 5, 16)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(TINY_OPTIONS)])
def test_backbone_builds_trains_one_step_and_exports(name, tmp_path):
    spec = get_backbone(name)
    cfg = ModelConfig(backbone=name, input_size=(32, 32), backbone_options=TINY_OPTIONS[name],
                      head=HeadConfig(dense_units=(8,)))
    # Grayscale 28x28 in: RGB backbones get resized and converted inside the model.
    model = build_classifier(cfg, image_shape=(28, 28, 1), num_classes=3)
    assert model.get_layer(BACKBONE_LAYER).input_shape == (None, 32, 32, spec.channels or 1)
    compile_model(model, TrainConfig(learning_rate=1e-3), total_steps=1)
    x = np.random.default_rng(0).uniform(0, 255, (4, 28, 28, 1)).astype("float32")
    y = np.array([0, 1, 2, 1])
    before = [np.array(w) for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.all(np.isfinite(loss))
    assert any(not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights))
    _, path = export_saved_model(model, str(tmp_path / "exported"), ["a", "b", "c"], (28, 28, 1))
    served = tf.saved_model.load(path).signatures["serve_pixels"](pixels=tf.constant(x.astype("uint8")))
    assert served["probabilities"].shape == (4, 3) and os.path.isdir(path)
    expected = model(x.astype("uint8").astype("float32"), training=False)
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-4)
