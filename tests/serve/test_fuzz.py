"""Fuzzing the REST server: thousands of malformed requests, each a 4xx JSON error, no crash."""
import base64
import collections
import json
import random
import struct
import time

import numpy as np
import tensorflow as tf

from fmkeras.serve.client import predict
from reliability.serve_process import Connection  # persistent HTTP/1.1, reopened when the server closes it

GOOD = "/v1/models/fashion:predict"


def _random_value(rng, depth=0):
    kind = rng.randrange(9 if depth < 4 else 6)
    return [lambda: rng.randint(-1000, 1000), lambda: rng.random() * 1e6,
            lambda: rng.choice(["x" * rng.randrange(5), "\ud800"]),
            lambda: None, lambda: rng.random() < 0.5, lambda: {"b64": "".join(rng.choices("A=b/*-", k=7))},
            lambda: [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))],
            lambda: {"k": _random_value(rng, depth + 1)},
            lambda: [[[rng.randint(0, 255)]] * rng.randrange(1, 3)]][kind]()


def malformed_requests(rng, good_body: bytes):
    """Yields (category, method, path, body, headers); every one must be refused with a 4xx."""
    pixels = {"signature_name": "serve_pixels"}
    while True:
        category = rng.choice(["bad_json", "bad_value", "bad_shape", "bad_dtype", "bad_base64", "bad_image",
                               "huge_body", "image_bomb", "unknown_model", "unknown_version", "wrong_method",
                               "bad_path", "deep_json", "bad_keys"])
        method, path, headers, body = "POST", GOOD, None, None
        if category == "bad_json":
            cut = rng.randrange(len(good_body) - 1)
            body = good_body[:cut] if rng.random() < 0.5 else good_body[:cut] + b"\x01" + good_body[cut:]
        elif category == "bad_value":
            body = json.dumps({"instances": [_random_value(rng)] if rng.random() < 0.5 else _random_value(rng)})
        elif category == "bad_shape":
            shape = rng.choice([(1, 28, 28), (28, 28, 1), (1, 28, 28, 3), (1, 0, 28, 1), (2, 4, 4, 2)])
            body = json.dumps({**pixels, "inputs": np.zeros(shape, int).tolist()})
        elif category == "bad_dtype":
            value = rng.choice([-1, 256, 1.5, "7", True, None, 1e40])
            body = json.dumps({**pixels, "instances": [[[[value]]]]})
        elif category == "bad_base64":
            body = json.dumps({"instances": [{"b64": "".join(rng.choices("abc*!%= \n", k=rng.randrange(1, 30)))}]})
        elif category == "bad_image":
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            prefix = rng.choice([b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff", b"BM"])
            body = json.dumps({"instances": [{"b64": base64.b64encode(prefix + junk).decode()}]})
        elif category == "image_bomb":  # headers claiming > 16.7 M pixels: refused before decoding
            side = rng.randrange(4097, 65535)
            png_header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", side, side)
            bomb = rng.choice([png_header + b"\x08\x00\x00\x00\x00",
                               b"GIF89a" + struct.pack("<HH", side, side) + b"\x00" * 8])
            body = json.dumps({"instances": [{"b64": base64.b64encode(bomb).decode()}]})
        elif category == "huge_body":
            body, headers = b"{}", {"Content-Length": str(rng.randrange(11 * 2 ** 20, 2 ** 40))}
        elif category == "unknown_model":
            path = rng.choice(["/v1/models/nope:predict", "/v1/models/fashionx", "/v1/models/x/metadata"])
            body = good_body if path.endswith(":predict") else None
            method = "POST" if body else "GET"
        elif category == "unknown_version":
            path = rng.choice([f"/v1/models/fashion/versions/{rng.randrange(3, 10 ** 6)}:predict",
                               "/v1/models/fashion/versions/-1:predict", "/v1/models/fashion/labels/zz:predict",
                               "/v1/models/fashion/versions/abc:predict"])
            body = good_body
        elif category == "wrong_method":
            method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
            body = good_body if method != "GET" else None
        elif category == "bad_path":
            path = rng.choice(["/", "/v1", "/v1/models", "/v1/models/", "/v1/models/fashion:predict/x",
                               "/v2/models/fashion:predict", "/v1/models/fashion/versions/:predict"])
            body = good_body
        elif category == "deep_json":
            depth = rng.randrange(33, 5000)
            body = "[" * depth + "]" * depth if rng.random() < 0.5 else '{"instances":' + "[" * depth
        else:
            body = json.dumps(rng.choice([{}, [], 3, "s", {"instance": []}, {"instances": []},
                                          {"inputs": {"images": [], "extra": 1}}, {"signature_name": 3}]))
        yield category, method, path, body.encode() if isinstance(body, str) else body, headers


def test_two_thousand_malformed_requests_get_4xx_json_and_server_keeps_serving(server, fashion):
    pixels = fashion.x_test[:1]
    good_body = json.dumps({"instances": [{"b64": base64.b64encode(tf.io.encode_png(pixels[0]).numpy()).decode()}]}
                           ).encode()
    conn = Connection(server.server_address[1])
    assert conn.send("POST", GOOD, good_body)[0] == 200
    rng, counts, start = random.Random(2024), collections.Counter(), time.monotonic()
    for i, (category, method, path, body, headers) in zip(range(2100), malformed_requests(rng, good_body)):
        status, data, _ = conn.send(method, path, body, headers)
        reply = json.loads(data)
        assert 400 <= status < 500 and isinstance(reply["error"], str) and reply["error"], (
            category, method, path, (body or b"")[:200], status, reply)
        counts[category] += 1
        if i % 500 == 0:  # the same connection keeps working between bad requests
            assert conn.send("POST", GOOD, good_body)[0] == 200
    assert sum(counts.values()) == 2100 and min(counts.values()) >= 100, counts
    assert time.monotonic() - start < 90
    out = predict(server.url, "fashion", pixels=pixels)
    assert out["probabilities"].shape == (1, 10)
