"""fmkeras/export/saved_model.py with per-class thresholds (multi-label models): both image signatures return
(N, K) sigmoid `probabilities` and (N, K) boolean `labels` at the thresholds; fmkeras.json lists them."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fmkeras.config import HeadConfig, ModelConfig
from fmkeras.export import export_saved_model, load_metadata
from fmkeras.transfer import build_classifier
from fmkeras.transfer.heads import MULTI_LABEL_OUTPUT

CLASSES = ("bag", "boot", "coat")


@pytest.fixture(scope="module")
def model():
    import keras
    keras.utils.set_random_seed(5)
    return build_classifier(ModelConfig(backbone_options={"filters": (4,)}, head=HeadConfig(multi_label=True)),
                            (16, 16, 1), len(CLASSES))


def test_multi_label_head_has_one_float32_sigmoid_per_class(model):
    out = model.get_layer(MULTI_LABEL_OUTPUT)
    assert model.layers[-1] is out and out.units == 3 and out.dtype_policy.compute_dtype == "float32"
    scores = model(np.random.default_rng(0).integers(0, 255, (4, 16, 16, 1)).astype("float32")).numpy()
    assert scores.shape == (4, 3) and not np.allclose(scores.sum(1), 1.0)  # independent, not a softmax


def test_signatures_return_probabilities_and_labels_at_the_thresholds(model, tmp_path):
    pixels = np.random.default_rng(1).integers(0, 255, (6, 16, 16, 1)).astype(np.uint8)
    expected = model(pixels.astype("float32")).numpy()
    thresholds = [float(np.median(expected[:, k])) for k in range(3)]  # some above, some below in each column
    version, path = export_saved_model(model, str(tmp_path / "ml"), CLASSES, (16, 16, 1),
                                       extra_metadata={"task": "multi_label"}, thresholds=thresholds)
    metadata = load_metadata(path)
    assert version == 1 and metadata["thresholds"] == thresholds and metadata["class_names"] == list(CLASSES)
    assert metadata["task"] == "multi_label" and "saved_model.pb" in metadata["files"]
    loaded = tf.saved_model.load(path)
    encoded = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0]).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    for out in (loaded.signatures["serve_pixels"](pixels=tf.constant(pixels)),
                loaded.signatures["serving_default"](images=tf.constant(encoded))):
        assert set(out) == {"probabilities", "labels"}
        np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
        np.testing.assert_array_equal(out["labels"].numpy(), expected >= np.float32(thresholds))
    with pytest.raises(ValueError, match="one value per class"):
        export_saved_model(model, str(tmp_path / "bad"), CLASSES, (16, 16, 1), thresholds=[0.5])
