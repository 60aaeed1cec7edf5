"""The REST server answers a text classifier's SavedModel with raw strings (batched and unbatched)."""
import concurrent.futures

import numpy as np
import pytest
import tensorflow as tf

from fmkeras.config import ModelConfig, TextConfig
from fmkeras.export import export_text_saved_model
from fmkeras.serve.client import ServingClientError, predict, predict_request
from fmkeras.transfer import build_text_classifier
from tests.serve.conftest import make_server

TEXTS = ["comet orbit near the planet", "bake the flour with butter", "guitar chord and drum rhythm",
         "a small new tool", "", "ünïcödé words — and punctuation!"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(3)
    train = ["star galaxy orbit", "oven flour butter", "guitar melody drum", "comet planet telescope"]
    model = build_text_classifier(
        ModelConfig(backbone="text_transformer", backbone_options={"size": "tiny", "dim": 16, "depth": 1,
                                                                   "heads": 2, "mlp_dim": 32}),
        TextConfig(max_tokens=50, sequence_length=6, wide="tf_idf"), train, 3)
    base = str(tmp_path_factory.mktemp("saved_models") / "topics")
    export_text_saved_model(model, base, ("astronomy", "cooking", "music"))
    return model, base


@pytest.mark.parametrize("batch_max_size", [1, 8])
def test_server_classifies_raw_strings_like_the_model(text_model, batch_max_size):
    model, base = text_model
    expected = model(tf.constant(TEXTS)).numpy()
    server = make_server(base, batch_max_size=batch_max_size, batch_timeout_ms=20.0)
    try:
        out = predict(server.url, "topics", texts=TEXTS)
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
        assert out["class_names"] == [("astronomy", "cooking", "music")[i] for i in expected.argmax(1)]
        # Concurrent single-text requests (merged into shared model calls when batching) get their own rows.
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            rows = list(pool.map(lambda t: predict(server.url, "topics", texts=[t])["probabilities"][0], TEXTS))
        np.testing.assert_allclose(np.stack(rows), expected, atol=1e-5)
        with pytest.raises(ServingClientError, match="HTTP 400"):  # a number where a string belongs
            from fmkeras.serve.client import request_json
            request_json(server.url, "POST", "/v1/models/topics:predict", {"instances": [3]})
    finally:
        server.close()


def test_client_refuses_texts_that_are_not_a_list_of_strings():
    with pytest.raises(ValueError, match="texts must be a list of str"):
        predict_request(texts="one string")
    with pytest.raises(ValueError, match="exactly one of"):
        predict_request(texts=["a"], pixels=np.zeros((1, 2, 2, 1), np.uint8))
