"""fmkeras/serve/request.py: TF Serving's row/columnar JSON formats, strict validation."""
import pytest
import tensorflow as tf

from fmkeras.serve.request import format_predict, json_depth, load_json, parse_predict
from fmkeras.serve.status import InvalidArgument

SPECS = {"serving_default": {"images": tf.TensorSpec([None], tf.string)},
         "serve_pixels": {"pixels": tf.TensorSpec([None, None, None, 1], tf.uint8)}}


def test_json_depth_ignores_brackets_in_strings():
    assert json_depth(b'{"a": [[1], "[[[[["]}') == 3
    with pytest.raises(InvalidArgument, match="nesting depth 40 exceeds the limit of 32"):
        load_json(b"[" * 40 + b"]" * 40, 32)


def test_row_and_columnar_b64_and_plain_strings():
    sig, inputs, fmt = parse_predict({"instances": [{"b64": "aGk="}, "plain"]}, SPECS)
    assert (sig, fmt) == ("serving_default", "row") and inputs["images"].tolist() == [b"hi", b"plain"]
    sig, inputs, fmt = parse_predict({"signature_name": "serve_pixels", "inputs": {"pixels": [[[[7]]]]}}, SPECS)
    assert fmt == "columnar" and inputs["pixels"].dtype == "uint8" and inputs["pixels"].shape == (1, 1, 1, 1)


@pytest.mark.parametrize("request_json,message", [
    ({"signature_name": "serve_pixels", "instances": [[[1.5]]]}, "must hold integers"),
    ({"signature_name": "serve_pixels", "instances": [[[[1]]], [[[1], [2]]]]}, "ragged"),
    ({"signature_name": "serve_pixels", "instances": [[["a"]]]}, "list of numbers"),
    ({"instances": [3]}, "expected a string"),
    ({"instances": [{"b64": 3}]}, "must hold a base64 string"),
    ({"instances": [{"images": "a", "x": "b"}]}, "exactly the inputs"),
    ({"instances": []}, "non-empty list"),
    ({"instance": []}, "unknown key 'instance'"),
    ({"instances": ["\ud800"]}, "not valid Unicode"),
    ({"signature_name": "serve_pixels", "instances": [[[[10 ** 400]]]]}, "list of numbers"),
    ({"signature_name": "serve_pixels", "instances": [[[[float("nan")]]]]}, "must hold integers"),
])
def test_bad_requests_name_the_problem(request_json, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_predict(request_json, SPECS)


def test_responses_follow_tf_serving_shapes():
    import numpy as np
    outputs = {"p": np.array([[0.25, 0.75]], np.float32), "name_bytes": np.array([b"\x00"], object)}
    assert format_predict(outputs, "row") == {"predictions": [{"p": [0.25, 0.75], "name_bytes": {"b64": "AA=="}}]}
    assert format_predict({"p": outputs["p"]}, "columnar") == {"outputs": [[0.25, 0.75]]}
