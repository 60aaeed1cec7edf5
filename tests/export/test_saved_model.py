"""fmkeras/export: versioned atomic export; serving outputs equal the Keras model's."""
import os

import numpy as np
import pytest
import tensorflow as tf

from fmkeras.config import ModelConfig
from fmkeras.export import export_saved_model, list_versions, load_metadata, publish_version
from fmkeras.transfer import build_classifier


@pytest.fixture(scope="module")
def model():
    return build_classifier(ModelConfig(backbone_options={"filters": (4, 8)}), (28, 28, 1), 10)


def test_outputs_equal_keras_for_pixels_and_png_bytes(tmp_path, model, fashion):
    names = list(fashion.class_names)
    version, path = export_saved_model(model, str(tmp_path / "fm"), names, (28, 28, 1))
    assert version == 1 and load_metadata(path)["class_names"] == names
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "serve_pixels"}
    pixels = fashion.x_test[:8]
    expected = model(pixels.astype("float32")).numpy()
    out = loaded.signatures["serve_pixels"](pixels=tf.constant(pixels))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    pngs = tf.constant([tf.io.encode_png(p).numpy() for p in pixels])
    out = loaded.signatures["serving_default"](images=pngs)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    top = expected.argmax(axis=1)
    assert out["class_ids"].numpy().tolist() == top.tolist()
    assert [n.decode() for n in out["class_names"].numpy()] == [names[i] for i in top]


def test_versions_increase_and_failed_writes_leave_nothing(tmp_path, model):
    base = str(tmp_path / "m")
    assert export_saved_model(model, base, list("0123456789"), (28, 28, 1))[0] == 1
    assert export_saved_model(model, base, list("0123456789"), (28, 28, 1))[0] == 2

    def crash(tmp_dir):
        open(os.path.join(tmp_dir, "partial"), "w").close()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        publish_version(base, crash)
    assert list_versions(base) == [1, 2] and sorted(os.listdir(base)) == ["1", "2"]


def test_tta_signature_averages_the_image_and_its_mirror(tmp_path, model, fashion):
    version, path = export_saved_model(model, str(tmp_path / "fm"), list(fashion.class_names), (28, 28, 1),
                                       tta="flip")
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "serve_pixels", "serve_pixels_tta"}
    assert load_metadata(path)["signatures"][-1] == "serve_pixels_tta" and load_metadata(path)["tta"] == "flip"
    pixels = fashion.x_test[:8]
    x = pixels.astype("float32")
    expected = (model(x).numpy() + model(x[:, :, ::-1]).numpy()) / 2
    out = loaded.signatures["serve_pixels_tta"](pixels=tf.constant(pixels))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    assert not np.allclose(expected, model(x).numpy(), atol=1e-4)  # the mirror really counted
