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


def _escaped_quotes(size: int, closed: bool = True) -> bytes:
    return b'{"instances": ["' + b'\\"' * (size // 2) + (b'"]}' if closed else b"]}")


def _seconds(fn, *args) -> float:
    import time
    started = time.perf_counter()
    try:
        fn(*args)
    except InvalidArgument:
        pass
    return time.perf_counter() - started


def test_json_scan_is_linear_in_the_body_even_for_escaped_quotes():
    from fmkeras.serve.request import json_shape
    assert json_shape(_escaped_quotes(1000)) == (2, 2)
    # The old backtracking regex took 0.10 s for 4 KB, 1.68 s for 16 KB and 3.68 s for 32 KB of unterminated
    # escaped quotes (measured on this machine), growing with the square of the size.
    seconds = {(size, closed): _seconds(json_shape, _escaped_quotes(size, closed))
               for size in (16 << 10, 64 << 10, 1 << 20) for closed in (True, False)}
    assert all(seconds[size, closed] < 0.1 for size in (16 << 10, 64 << 10) for closed in (True, False)), seconds
    assert seconds[1 << 20, True] < 1.0 and seconds[1 << 20, False] < 1.0, seconds
    assert json_depth(b'["\\\\", "[[[", "\\\\\\"[[", [[]]]') == 3  # escaped backslash, then escaped quote


def test_an_unterminated_string_is_refused_at_once():
    with pytest.raises(InvalidArgument, match="unterminated string"):
        load_json(b'{"instances": ["' + b'\\"' * 100_000, 32)
    assert _seconds(load_json, b'{"instances": ["' + b'\\"' * 100_000, 32) < 0.1
    with pytest.raises(InvalidArgument, match="unterminated string"):
        load_json(b'{"a": "abc\\\\\\"}', 32)


def test_instance_count_is_checked_before_any_conversion(monkeypatch):
    import fmkeras.serve.request as request
    converted = []
    monkeypatch.setattr(request, "to_array", lambda *a, **k: converted.append(a) or None)
    with pytest.raises(InvalidArgument, match="5000 instances in 'instances' exceed the limit of 100"):
        parse_predict({"instances": ["x"] * 5000}, SPECS, max_instances=100)
    with pytest.raises(InvalidArgument, match="5000 instances in 'pixels' exceed the limit of 100"):
        parse_predict({"signature_name": "serve_pixels", "inputs": {"pixels": [[[[0]]]] * 5000}}, SPECS, 100)
    assert converted == []
