"""Server hardening from the reliability suite: gzip caps, bracket bombs, read deadlines (slowloris),
the max_inflight bound (429), graceful drain, and complete-version manifests."""
import gzip
import http.client
import json
import os
import shutil
import socket
import threading
import time

import pytest

from fmkeras.config import ServeConfig, validate_serve
from fmkeras.errors import ConfigError
from fmkeras.serve import is_complete
from fmkeras.serve.request import decode_body, load_json
from fmkeras.serve.status import InvalidArgument, PayloadTooLarge, UnsupportedMediaType
from tests.serve.conftest import make_server

PREDICT = "/v1/models/fashion:predict"
PIXELS = json.dumps({"signature_name": "serve_pixels", "inputs": [[[[0]] * 28] * 28]}).encode()


def test_gzip_bodies_inflate_up_to_the_cap_only():
    assert decode_body(gzip.compress(b'{"a": 1}'), "gzip", 100) == b'{"a": 1}'
    assert decode_body(b"plain", None, 100) == b"plain"
    with pytest.raises(PayloadTooLarge, match="inflates past the limit of 1000 bytes"):
        decode_body(gzip.compress(b"[" * 10 ** 6), "gzip", 1000)
    with pytest.raises(InvalidArgument, match="truncated"):
        decode_body(gzip.compress(b"[1, 2, 3]")[:-4], "GZip", 1000)
    with pytest.raises(UnsupportedMediaType, match="'br' is not supported"):
        decode_body(b"x", "br", 1000)


def test_bracket_bombs_are_refused_before_parsing():
    body = b"[" + b",".join([b"[[0]]"] * 1000) + b"]"
    assert len(load_json(body, 32, max_containers=2001)) == 1000
    with pytest.raises(InvalidArgument, match="2001 arrays/objects; the limit is 2000"):
        load_json(body, 32, max_containers=2000)


def test_new_serve_fields_are_validated():
    with pytest.raises(ConfigError, match="serve.max_inflight"):
        validate_serve(ServeConfig(max_inflight=0))
    with pytest.raises(ConfigError, match="serve.read_timeout_seconds"):
        validate_serve(ServeConfig(read_timeout_seconds=0))


def _raw(port, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def _read_all(sock) -> bytes:
    out = b""
    try:
        while chunk := sock.recv(4096):
            out += chunk
    except OSError:
        pass
    sock.close()
    return out


def test_slow_senders_are_cut_off_with_408_while_others_are_served(base_path):
    srv = make_server(base_path, read_timeout_seconds=0.6)
    try:
        port = srv.server_address[1]
        started = time.monotonic()
        slow = _raw(port, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n".encode())
        body = _raw(port, f"POST {PREDICT} HTTP/1.1\r\nContent-Length: 100\r\n\r\n{{".encode())
        for _ in range(4):  # a byte every 0.2 s: each recv succeeds, only the deadline stops it
            time.sleep(0.2)
            for sock in (slow, body):
                try:
                    sock.sendall(b"a")
                except OSError:
                    pass
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", PREDICT, PIXELS)
        assert conn.getresponse().status == 200
        conn.close()
        answers = [_read_all(slow), _read_all(body)]
        assert time.monotonic() - started < 5
        assert all(a.startswith(b"HTTP/1.1 408") and b"not received within 0.6 s" in a for a in answers), answers
    finally:
        srv.close()


class _SlowServable:
    """Stands in for a model version whose call blocks until released."""

    def __init__(self, real):
        self.real, self.release, self.entered = real, threading.Event(), threading.Semaphore(0)
        self.version, self.input_specs, self.name = real.version, real.input_specs, real.name
        self.metadata = real.metadata

    def run(self, signature, inputs):
        self.entered.release()
        self.release.wait(10)
        return self.real.run(signature, inputs)


def _post_in_thread(port, replies):
    def send():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            conn.request("POST", PREDICT, PIXELS)
            response = conn.getresponse()
            replies.append((response.status, response.read()))
        except OSError as err:
            replies.append((None, str(err)))
        finally:
            conn.close()
    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.fixture
def slow_server(base_path, tmp_path):
    base = str(tmp_path / "fashion")
    shutil.copytree(os.path.join(base_path, "1"), os.path.join(base, "1"))
    srv = make_server(base, max_inflight=1, batch_timeout_ms=0)
    slow = _SlowServable(srv.store.get())
    srv.store._loaded = {slow.version: slow}
    srv.store.refresh = lambda: [slow.version]
    srv.store.stop()
    yield srv, slow
    slow.release.set()
    srv.close()


def test_requests_beyond_max_inflight_get_a_fast_429(slow_server):
    srv, slow = slow_server
    replies = []
    first = _post_in_thread(srv.server_address[1], replies)
    assert slow.entered.acquire(timeout=10)
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    conn.request("POST", PREDICT, PIXELS)
    response = conn.getresponse()
    assert response.status == 429 and "serve.max_inflight" in json.loads(response.read())["error"]
    assert time.monotonic() - started < 1.0
    slow.release.set()
    first.join(timeout=20)
    assert replies[0][0] == 200


def test_drain_finishes_in_flight_requests_and_refuses_new_ones(slow_server):
    srv, slow = slow_server
    port = srv.server_address[1]
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    idle.request("GET", "/v1/models/fashion")
    response = idle.getresponse()
    assert response.status == 200 and response.read()
    replies = []
    in_flight = _post_in_thread(port, replies)
    assert slow.entered.acquire(timeout=10)
    left = []
    drainer = threading.Thread(target=lambda: left.append(srv.drain(10)))
    drainer.start()
    time.sleep(0.8)  # drain has closed the listening socket and waits for the request
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    idle.request("GET", "/v1/models/fashion")
    refused = idle.getresponse()
    assert refused.status == 503 and "shutting down" in json.loads(refused.read())["error"]
    assert drainer.is_alive() and not replies
    slow.release.set()
    in_flight.join(timeout=20)
    drainer.join(timeout=20)
    assert replies[0][0] == 200 and len(json.loads(replies[0][1])["outputs"]["probabilities"]) == 1
    assert left == [0]


def test_a_version_copied_file_by_file_is_complete_only_when_every_byte_is_there(base_path, tmp_path):
    source, target = os.path.join(base_path, "1"), str(tmp_path / "3")
    manifest = json.load(open(os.path.join(source, "fmkeras.json")))["files"]
    assert "saved_model.pb" in manifest and "variables/variables.index" in manifest
    os.makedirs(os.path.join(target, "variables"))
    shutil.copy(os.path.join(source, "fmkeras.json"), target)  # the marker first, as a careless copy might
    for name in sorted(manifest, reverse=True):
        assert not is_complete(target)
        data = open(os.path.join(source, name), "rb").read()
        with open(os.path.join(target, name), "wb") as fh:
            fh.write(data[:-1])  # all but the last byte
        assert not is_complete(target), name
        with open(os.path.join(target, name), "ab") as fh:
            fh.write(data[-1:])
    assert is_complete(target)


def _reply(port, data: bytes):
    raw = _read_all(_raw(port, data))
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body) if body else {}


@pytest.fixture(scope="module")
def guarded(base_path, tmp_path_factory):
    token = tmp_path_factory.mktemp("token") / "token"
    token.write_text("s3cret-token\n")
    srv = make_server(base_path, auth_token_file=str(token), allowed_origins=("http://localhost:3000",))
    yield srv
    srv.close()


def test_non_ascii_digits_in_content_length_or_version_are_400(server):
    port = server.server_address[1]
    body = "١٢".encode("utf-8")  # Arabic-Indic digits: str.isdigit() is True, int() would read 12
    status, reply = _reply(port, b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: "
                           + body + b"\r\n\r\n" + b"x" * 12)
    assert status == 400 and "bad Content-Length" in reply["error"]
    status, _ = _reply(port, b"GET /v1/models/fashion HTTP/1.\xb2\r\nHost: localhost\r\n\r\n")
    assert status == 400


@pytest.mark.parametrize("headers,code,message", [
    ({"Host": "evil.example:8501"}, 403, "Host 'evil.example:8501' is not in serve.allowed_hosts"),
    ({"Origin": "https://evil.example"}, 403, "requests from browser origin 'https://evil.example' are not allowed"),
    ({"Content-Type": "text/plain"}, 415, "predict needs Content-Type: application/json, got 'text/plain'"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "needs Content-Type: application/json"),
])
def test_browser_reach_is_refused(server, headers, code, message):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.request("POST", PREDICT, PIXELS, headers=headers)
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())["error"].count(message)) == (code, 1)
    conn.close()


def test_loopback_names_json_and_plain_clients_are_served(server):
    for headers in ({"Host": "localhost:1"}, {"Host": "[::1]:8501"}, {"Content-Type": "application/json; charset=utf-8"},
                    {}):
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        conn.request("POST", PREDICT, PIXELS, headers=headers)
        assert conn.getresponse().status == 200, headers
        conn.close()


def _call(srv, headers, method="POST", path=PREDICT):
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    conn.request(method, path, PIXELS if method == "POST" else None, headers=headers)
    response = conn.getresponse()
    out = response.status, response.getheader("WWW-Authenticate"), response.read()
    conn.close()
    return out


def test_bearer_token_is_required_and_compared_in_constant_time(guarded, monkeypatch):
    import fmkeras.serve.access as access
    compared = []
    real = access.hmac.compare_digest
    monkeypatch.setattr(access.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert _call(guarded, {})[:2] == (401, "Bearer")
    assert _call(guarded, {"Authorization": "Bearer wrong"})[:2] == (401, "Bearer")
    assert _call(guarded, {"Authorization": "Basic s3cret-token"})[0] == 401
    assert _call(guarded, {"Authorization": "Bearer s3cret-token"})[0] == 200
    assert _call(guarded, {"Authorization": "Bearer s3cret-token"}, "GET", "/v1/models/fashion")[0] == 200
    assert (b"wrong", b"s3cret-token") in compared
    # An allowed origin still needs the JSON content type (a form post from that page is refused).
    assert _call(guarded, {"Authorization": "Bearer s3cret-token", "Origin": "http://localhost:3000"})[0] == 415
    assert _call(guarded, {"Authorization": "Bearer s3cret-token", "Origin": "http://localhost:3000",
                           "Content-Type": "application/json"})[0] == 200


def test_binding_beyond_loopback_warns_that_there_is_no_authentication(tmp_path):
    from fmkeras.serve.access import exposure_warning
    assert exposure_warning(ServeConfig(host="127.0.0.1")) is None
    assert exposure_warning(ServeConfig(host="::1")) is None
    warning = exposure_warning(ServeConfig(host="0.0.0.0"))
    assert "reachable from other machines" in warning and "NO authentication" in warning
    assert "NO authentication" not in exposure_warning(ServeConfig(host="0.0.0.0", auth_token_file="t"))


def test_a_request_over_its_pixel_budget_is_refused(base_path, fashion):
    import base64
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.new("L", (100, 100)).save(out, "PNG")
    image = {"b64": base64.b64encode(out.getvalue()).decode()}
    srv = make_server(base_path, max_image_pixels=10_000, max_request_pixels=25_000)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=30)
        conn.request("POST", PREDICT, json.dumps({"instances": [image] * 2}))
        response = conn.getresponse()
        assert (response.status, len(json.loads(response.read())["predictions"])) == (200, 2)  # 20,000 px: fine
        conn.request("POST", PREDICT, json.dumps({"instances": [image] * 3}))
        response = conn.getresponse()
        assert response.status == 400
        error = json.loads(response.read())["error"]
        assert "images 0..2 add up to 30000 pixels; the limit per request is 25000" in error
        conn.close()
    finally:
        srv.close()
