"""fmkeras/serve/server.py: TF Serving's REST API on real Fashion-MNIST images."""
import base64
import http.client
import json
import socket
import time

import numpy as np
import pytest
import tensorflow as tf

from fmkeras.serve.client import ServingClientError, model_metadata, model_status, predict


def call(server, method, path, payload=None, raw=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    try:
        body = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_predict_equals_keras_in_every_format(server, trained, fashion):
    pixels = fashion.x_test[:16]
    expected = trained(pixels.astype("float32"), training=False).numpy()
    pngs = [tf.io.encode_png(p).numpy() for p in pixels]
    by_images = predict(server.url, "fashion", images=pngs)
    by_pixels = predict(server.url, "fashion", pixels=pixels, version=1)
    for out in (by_images, by_pixels):
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
        assert out["class_ids"].tolist() == expected.argmax(1).tolist()
        assert out["class_names"] == [fashion.class_names[i] for i in expected.argmax(1)]

    # Row format with named inputs, and columnar b64 strings, through the raw API.
    rows = {"signature_name": "serve_pixels", "instances": [{"pixels": p.tolist()} for p in pixels[:3]]}
    status, reply = call(server, "POST", "/v1/models/fashion/labels/stable:predict", rows)
    assert status == 200 and len(reply["predictions"]) == 3
    np.testing.assert_allclose([r["probabilities"] for r in reply["predictions"]], expected[:3], atol=1e-5)
    columns = {"inputs": {"images": [{"b64": base64.b64encode(b).decode()} for b in pngs[:2]]}}
    status, reply = call(server, "POST", "/v1/models/fashion/versions/2:predict", columns)
    assert status == 200 and set(reply["outputs"]) == {"probabilities", "class_ids", "class_names"}
    np.testing.assert_allclose(reply["outputs"]["probabilities"], expected[:2], atol=1e-5)


def test_status_and_metadata_are_shaped_like_tf_serving(server):
    assert model_status(server.url, "fashion") == [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}} for v in ("2", "1")]
    assert model_status(server.url, "fashion", version=1)[0]["version"] == "1"
    meta = model_metadata(server.url, "fashion")
    assert meta["model_spec"] == {"name": "fashion", "signature_name": "", "version": "2"}
    defs = meta["metadata"]["signature_def"]["signature_def"]
    images = defs["serving_default"]["inputs"]["images"]
    assert images["dtype"] == "DT_STRING" and images["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert defs["serve_pixels"]["inputs"]["pixels"]["dtype"] == "DT_UINT8"
    assert defs["serve_pixels"]["outputs"]["probabilities"]["tensor_shape"]["dim"][1]["size"] == "10"
    assert defs["serving_default"]["method_name"] == "tensorflow/serving/predict"


@pytest.mark.parametrize("method,path,payload,code,message", [
    ("POST", "/v1/models/nope:predict", {"instances": [1]}, 404, "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/fashion/versions/7:predict", {"instances": [1]}, 404, "Specific(fashion, 7)"),
    ("POST", "/v1/models/fashion/labels/beta:predict", {"instances": [1]}, 404, "Unrecognized servable version label"),
    ("POST", "/v1/models/fashion:predict", {"instances": [{"b64": "***"}]}, 400, "not valid base64"),
    ("POST", "/v1/models/fashion:predict", {"instances": [{"b64": base64.b64encode(b"GIF89 no").decode()}]}, 400,
     "image 0: GIF without a logical screen descriptor; refused before decoding"),
    ("POST", "/v1/models/fashion:predict", {"instances": [{"b64": base64.b64encode(
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").decode()}]}, 400, "Invalid GIF data"),
    ("POST", "/v1/models/fashion:predict", {"signature_name": "x", "instances": [1]}, 400, "\"x\" not found"),
    ("POST", "/v1/models/fashion:predict", {"signature_name": "serve_pixels", "instances": [[[30]]]}, 400,
     "rank 4"),
    ("POST", "/v1/models/fashion:predict", {"signature_name": "serve_pixels", "inputs": [[[[300]]]]}, 400,
     "values must be in [0, 255]"),
    ("POST", "/v1/models/fashion:predict", {"instances": [1], "inputs": [1]}, 400, "Not both"),
    ("POST", "/v1/models/fashion:classify", {"instances": [1]}, 501, "classify is not implemented"),
    ("GET", "/v1/models/fashion:predict", None, 405, "predict needs POST"),
    ("PUT", "/v1/models/fashion", {}, 405, "needs GET"),
    ("GET", "/v1/models/fashion/versions/x", None, 400, "Malformed request"),
])
def test_errors_use_tf_serving_status_codes(server, method, path, payload, code, message):
    status, reply = call(server, method, path, payload)
    assert status == code and message in reply["error"], reply


def test_oversized_body_is_refused_before_reading(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        # Claims 1 GB but sends a few bytes: the answer must come from the header alone.
        conn.putrequest("POST", "/v1/models/fashion:predict")
        conn.putheader("Content-Length", str(10 ** 9))
        conn.endheaders(b"{}")
        response = conn.getresponse()
        assert response.status == 413 and "exceeds the limit" in json.loads(response.read())["error"]
    finally:
        conn.close()


def test_client_raises_with_status_and_message(server, fashion):
    with pytest.raises(ServingClientError) as err:
        predict(server.url, "fashion", pixels=fashion.x_test[:1], version=5)
    assert err.value.code == 404 and "Specific(fashion, 5)" in err.value.message


def test_decompression_bomb_header_is_refused_before_decoding(server):
    import struct
    import zlib
    # A valid, tiny PNG whose header claims 60000 x 60000 pixels (3.6 GB once decoded).
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(  # noqa: E731
        ">I", zlib.crc32(kind + data))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    status, reply = call(server, "POST", "/v1/models/fashion:predict",
                         {"instances": [{"b64": base64.b64encode(bomb).decode()}]})
    assert status == 400 and "image 0 is 60000x60000 pixels; the limit is 16777216" in reply["error"]


def _busy(port: int) -> socket.socket:
    """A connection in the middle of sending its headers (not idle: it cannot be closed to make room)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /v1/models/fashion HTTP/1.1\r\n")
    return sock


def test_busy_connections_beyond_the_limit_get_503(base_path, fashion):
    from tests.serve.conftest import make_server
    srv = make_server(base_path, max_connections=2)
    busy = [_busy(srv.server_address[1]) for _ in range(2)]
    try:
        time.sleep(0.3)  # both handlers have read their first bytes
        status, reply = call(srv, "GET", "/v1/models/fashion")
        assert status == 503 and "too many connections (limit 2)" in reply["error"]
        for sock in busy:
            sock.close()
        for _ in range(50):  # handler threads notice the closed sockets
            status, reply = call(srv, "GET", "/v1/models/fashion")
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200
    finally:
        for sock in busy:
            sock.close()
        srv.close()


def test_max_connections_plus_one_idle_sockets_leave_a_normal_client_served(base_path, fashion):
    from tests.serve.conftest import make_server
    srv = make_server(base_path, max_connections=4, idle_timeout_seconds=30)  # eviction, not the timeout
    # One at a time: each connection's thread marks it idle when it starts waiting, and connections opened at
    # once on a loaded machine start waiting in any order (then idle[0] need not be the longest idle).
    idle = []
    for _ in range(5):
        idle.append(socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10))
        time.sleep(0.3)
    try:
        started = time.monotonic()
        status, reply = call(srv, "GET", "/v1/models/fashion")
        assert status == 200 and time.monotonic() - started < 3, (status, reply)
        assert srv.evicted_idle >= 2  # the 5th idle socket and the client each made room
        assert idle[0].recv(10) == b""  # the longest-idle one was closed
    finally:
        for sock in idle:
            sock.close()
        srv.close()


def test_one_client_holds_at_most_its_share_and_idle_sockets_time_out(base_path, fashion):
    from tests.serve.conftest import make_server
    srv = make_server(base_path, max_connections=10, max_connections_per_client=2, idle_timeout_seconds=0.5)
    busy = [_busy(srv.server_address[1]) for _ in range(2)]
    try:
        time.sleep(0.3)
        status, reply = call(srv, "GET", "/v1/models/fashion")
        assert status == 503 and "from one client (limit 2)" in reply["error"]
        for sock in busy:
            sock.close()
        time.sleep(0.3)
        idle = socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10)
        started = time.monotonic()
        assert idle.recv(10) == b""  # closed by the server after idle_timeout_seconds
        assert 0.3 < time.monotonic() - started < 5
        idle.close()
    finally:
        for sock in busy:
            sock.close()
        srv.close()
