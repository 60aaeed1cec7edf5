"""The REST server answers a multi-label SavedModel: per-class probabilities and boolean labels per image, in
row and columnar form, as the signature returns them."""
import base64
import io

import numpy as np
from PIL import Image

from fmkeras.config import HeadConfig, ModelConfig
from fmkeras.export import export_saved_model
from fmkeras.serve.client import predict, request_json
from fmkeras.transfer import build_classifier
from tests.serve.conftest import make_server


def test_rest_predict_of_a_multi_label_export(tmp_path):
    import keras
    keras.utils.set_random_seed(9)
    model = build_classifier(ModelConfig(backbone_options={"filters": (4,)}, head=HeadConfig(multi_label=True)),
                             (16, 16, 1), 4)
    pixels = np.random.default_rng(2).integers(0, 255, (3, 16, 16, 1)).astype(np.uint8)
    expected = model(pixels.astype("float32")).numpy()
    # Halfway between the two lowest scores of each class: one image below, two above, none on the cut.
    thresholds = [float(np.sort(expected[:, k])[:2].mean()) for k in range(4)]
    export_saved_model(model, str(tmp_path / "mosaic"), ("a", "b", "c", "d"), (16, 16, 1),
                       extra_metadata={"task": "multi_label"}, thresholds=thresholds)
    server = make_server(str(tmp_path / "mosaic"))
    try:
        out = predict(server.url, "mosaic", pixels=pixels, timeout=30)
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
        assert out["labels"].dtype == bool and out["labels"].shape == (3, 4)
        np.testing.assert_array_equal(out["labels"], expected >= np.float32(thresholds))
        buffer = io.BytesIO()
        Image.fromarray(pixels[0, ..., 0]).save(buffer, format="PNG")
        reply = request_json(server.url, "POST", "/v1/models/mosaic:predict",
                             {"instances": [{"b64": base64.b64encode(buffer.getvalue()).decode()}]}, timeout=30)
        row = reply["predictions"][0]
        assert set(row) == {"probabilities", "labels"} and all(isinstance(v, bool) for v in row["labels"])
        assert row["labels"] == (expected[0] >= np.float32(thresholds)).tolist()
        metadata = request_json(server.url, "GET", "/v1/models/mosaic/metadata", timeout=30)
        assert metadata["metadata"]["fmkeras"]["thresholds"] == thresholds
    finally:
        server.close()
