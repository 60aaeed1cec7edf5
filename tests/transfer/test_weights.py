"""fmkeras/transfer/weights.py: presets through the Keras cache, offline errors, weight files."""
import dataclasses
import os
import socket
import time

import h5py
import numpy as np
import pytest
# No public Keras API writes the legacy h5 weights layout keras.applications publishes its files in.
from keras.src.legacy.saving import legacy_h5_format

from fmkeras.backbones import get_backbone
from fmkeras.backbones.applications import VGG16_NOTOP
from fmkeras.config import ModelConfig
from fmkeras.errors import WeightsError
from fmkeras.transfer import BACKBONE_LAYER, build_backbone, build_classifier
from fmkeras.transfer import weights as weights_module
from fmkeras.model_files.weight_hashes import file_digest


def _assert_same(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)


def _save_legacy_h5(model, path):
    # The format keras.applications' published *_notop.h5 files use.
    with h5py.File(path, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, model)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def test_imagenet_loads_from_the_keras_cache_without_network(keras_home, monkeypatch):
    spec = get_backbone("vgg16")
    published = spec.builder((32, 32, 3))  # stands in for the real file: same name, same format
    os.makedirs(keras_home / "models")
    path = str(keras_home / "models" / VGG16_NOTOP)
    _save_legacy_h5(published, path)
    # The stand-in is registered with its own hash: a file that does not match the preset's is refused.
    monkeypatch.setitem(spec.presets, "imagenet", dataclasses.replace(spec.presets["imagenet"],
                                                                     file_hash=file_digest(path, "md5")))
    monkeypatch.setattr(weights_module, "network_reachable", lambda *a, **k: pytest.fail("network was used"))
    _assert_same(build_backbone(spec, (32, 32, 3), "imagenet"), published)


def test_imagenet_offline_without_file_says_what_to_place_where(keras_home, monkeypatch):
    monkeypatch.setattr(weights_module, "network_reachable", lambda *a, **k: False)
    spec = get_backbone("resnet50v2")
    expected = os.path.join(str(keras_home), "models")
    with pytest.raises(WeightsError, match=f"place resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5 in "
                                           f"{expected}"):
        build_backbone(spec, (32, 32, 3), "imagenet")
    with pytest.raises(WeightsError, match="presets: imagenet"):
        build_backbone(spec, (32, 32, 3), "imagenet21k")


def test_network_check_is_quick():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert weights_module.network_reachable(f"https://127.0.0.1:{port}/x.h5", timeout=1.0)
    start = time.perf_counter()
    assert not weights_module.network_reachable(f"https://127.0.0.1:{port}/x.h5", timeout=1.0)
    assert time.perf_counter() - start < 2.0


def test_h5_and_keras_files_round_trip(tmp_path):
    spec = get_backbone("resnet18")
    options = {"widths": (4, 8, 8, 8)}
    original = spec.builder((32, 32, 3), **options)
    legacy = str(tmp_path / "resnet18.h5")
    _save_legacy_h5(original, legacy)
    _assert_same(build_backbone(spec, (32, 32, 3), legacy, options), original)
    native = str(tmp_path / "resnet18.weights.h5")
    original.save_weights(native)
    _assert_same(build_backbone(spec, (32, 32, 3), native, options), original)
    # A whole classifier saved by fmkeras (a run's model.keras): its "backbone" layer is used.
    classifier = build_classifier(ModelConfig(backbone="resnet18", backbone_options=options), (32, 32, 3), 4)
    classifier.save(tmp_path / "model.keras")
    _assert_same(build_backbone(spec, (32, 32, 3), str(tmp_path / "model.keras"), options),
                 classifier.get_layer(BACKBONE_LAYER))
    with pytest.raises(WeightsError, match="model.keras do not fit backbone"):
        build_backbone(spec, (32, 32, 3), str(tmp_path / "model.keras"), {"widths": (4, 4, 4, 4)})
