"""fmkeras/transfer/heads.py and weights.py: classifier assembly and weight files."""
import numpy as np
import pytest

import keras

from fmkeras.backbones import get_backbone
from fmkeras.config import HeadConfig, ModelConfig
from fmkeras.errors import WeightsError
from fmkeras.transfer import BACKBONE_LAYER, build_backbone, build_classifier


def test_classifier_adapts_size_and_channels():
    cfg = ModelConfig(backbone="cnn", input_size=(32, 32), backbone_options={"filters": (4,)},
                      head=HeadConfig(pooling="flatten", dense_units=(8,), dropout=0.5))
    model = build_classifier(cfg, image_shape=(28, 28, 1), num_classes=3)
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 3)
    assert model.get_layer("resize").output.shape[1:3] == (32, 32)
    assert model.get_layer(BACKBONE_LAYER).input_shape == (None, 32, 32, 1)
    probs = model(np.random.rand(2, 28, 28, 1).astype("float32") * 255)
    np.testing.assert_allclose(probs.numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_weight_file_round_trip(tmp_path):
    spec = get_backbone("cnn")
    original = spec.builder((16, 16, 1), filters=(4, 8))
    path = str(tmp_path / "cnn.weights.h5")
    original.save_weights(path)
    loaded = build_backbone(spec, (16, 16, 1), path, {"filters": (4, 8)})
    for a, b in zip(original.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    keras_path = str(tmp_path / "cnn.keras")
    original.save(keras_path)
    loaded = build_backbone(spec, (16, 16, 1), keras_path, {"filters": (4, 8)})
    for a, b in zip(original.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weight_errors_say_what_is_wrong(tmp_path):
    spec = get_backbone("cnn")
    with pytest.raises(WeightsError, match="weights file not found: .*absent.weights.h5"):
        build_backbone(spec, (16, 16, 1), str(tmp_path / "absent.weights.h5"))
    path = str(tmp_path / "small.weights.h5")
    spec.builder((16, 16, 1), filters=(4,)).save_weights(path)
    with pytest.raises(WeightsError, match="small.weights.h5 do not fit backbone"):
        build_backbone(spec, (16, 16, 1), path, {"filters": (4, 8)})
    with pytest.raises(WeightsError, match="cnn has no weight presets"):
        build_backbone(spec, (16, 16, 1), "imagenet")


def test_saved_classifier_reloads_in_safe_mode(tmp_path):
    model = build_classifier(ModelConfig(backbone_options={"filters": (4,)}), (28, 28, 1), 10)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.random.rand(1, 28, 28, 1).astype("float32") * 255
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), atol=1e-6)


def test_binary_head_is_one_sigmoid_unit_with_two_probabilities():
    from fmkeras.errors import ConfigError
    cfg = ModelConfig(backbone_options={"filters": (4,)}, head=HeadConfig(binary=True))
    model = build_classifier(cfg, (28, 28, 1), 2)
    assert model.get_layer("head_sigmoid").units == 1 and model.output_shape == (None, 2)
    x = np.random.rand(3, 28, 28, 1).astype("float32") * 255
    probs = model(x).numpy()
    p = keras.Model(model.input, model.get_layer("head_sigmoid").output)(x).numpy()[:, 0]
    np.testing.assert_allclose(probs[:, 1], p, rtol=1e-6)
    y = np.array([0, 1, 1])
    sparse = keras.losses.SparseCategoricalCrossentropy()(y, probs)
    np.testing.assert_allclose(float(sparse), float(keras.losses.BinaryCrossentropy()(y[:, None], p[:, None])),
                               rtol=1e-4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ConfigError, match="binary` needs exactly 2 classes. Received: 3"):
        build_classifier(cfg, (28, 28, 1), 3)
