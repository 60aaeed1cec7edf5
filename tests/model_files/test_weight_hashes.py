"""fmkeras/model_files/weight_hashes.py: tampered weight files are refused, with no network call."""
import socket
import urllib.request

import keras
import pytest

from fmkeras.backbones.registry import BackboneSpec, WeightPreset
from fmkeras.errors import WeightsError
from fmkeras.model_files.weight_hashes import file_digest, write_sha256_sidecar
from fmkeras.transfer.weights import build_backbone, load_weight_file


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network call was attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, name="d")(inputs))


def test_sidecar_accepts_genuine_and_refuses_tampered_file(tmp_path):
    path = str(tmp_path / "backbone.weights.h5")
    source = _model()
    source.save_weights(path)
    write_sha256_sidecar(path)
    loaded = load_weight_file(_model(), path)
    assert (loaded.get_weights()[0] == source.get_weights()[0]).all()
    data = bytearray(open(path, "rb").read())
    data[-100] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(WeightsError, match="does not match the known hash"):
        load_weight_file(_model(), path)


def test_tampered_keras_applications_cache_file_is_refused_offline(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "efficientnetb0_notop.h5").write_bytes(b"not the real weights")
    preset = WeightPreset("efficientnetb0_notop.h5", "https://storage.googleapis.com/keras-applications/"
                          "efficientnetb0_notop.h5", "50bc09e76180e00e4465e1a485ddc09d")
    spec = BackboneSpec(name="effnet", preprocess=lambda x: x, default_input_size=(32, 32),
                        builder=lambda shape, weights=None: keras.applications.EfficientNetB0(
                            include_top=False, weights=weights, input_shape=shape),
                        presets={"imagenet": preset})
    with pytest.raises(WeightsError, match="efficientnetb0_notop.h5 are tampered or corrupt: md5 [0-9a-f]+ != known 50bc09e7"):
        build_backbone(spec, (32, 32, 3), weights="imagenet")


