"""Scenario 11: hostile clients beyond malformed requests, against a real `fmkeras serve` process.

- JSON built to make a scanner backtrack (megabytes of escaped quotes, gzip-compressed to a few
  KB) and an unterminated string: a 400 within `fast_seconds`, while the server keeps answering;
- image bombs in every format the decoder accepts (JPEG with bytes before its frame header,
  WebP lossy/lossless/extended, GIF frames larger than the screen with and without a colour
  table, BMP) and a request whose images are each under the limit but not together: 400;
- browser reach (foreign Origin, foreign or doubled Host, text/plain and form posts): 403/415;
- non-ASCII digits in Content-Length and in the HTTP version: 400, never 500;
- `max_connections` + 1 idle sockets: a normal client is still served.
Every answer must be a JSON error without a traceback; the server must not crash, answer 5xx, or
grow its RSS by more than `rss_limit_mb`.
"""
from __future__ import annotations

import base64
import gzip
import json
import os
import socket
import struct
import time

from reliability.hostile_http import _png
from reliability.serve_process import (ServerProcess, export_model, has_traceback, http_request, pixels_body,
                                       record_server_end, test_images)

MAX_CONNECTIONS = 16


def _b64(*blobs) -> bytes:
    return json.dumps({"instances": [{"b64": base64.b64encode(b).decode()} for b in blobs]}).encode()


def image_bombs() -> dict:
    """name -> encoded bytes whose header declares far more pixels than the server allows."""
    side = (30000).to_bytes(2, "big")
    sof = b"\xff\xc0\x00\x11\x08" + side + side + b"\x03" + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    riff = b"RIFF\x00\x00\x00\x00WEBP"
    gif_frame = b"," + struct.pack("<HHHHB", 0, 0, 40000, 30000, 0) + b"\x02\x02\x44\x01\x00;"
    return {
        "jpeg_bytes_before_sof": b"\xff\xd8\xff\xe0\x00\x04ab" + b"bytes libjpeg skips" + sof + b"\xff\xd9",
        "webp_lossy": riff + b"VP8 \x10\x00\x00\x00" + b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 16383, 16383),
        "webp_lossless": riff + b"VP8L\x05\x00\x00\x00\x2f" + (0x0FFFFFFF).to_bytes(4, "little") + b"\0" * 8,
        "webp_extended": riff + b"VP8X\x0a\x00\x00\x00" + b"\0" * 4 + (16383).to_bytes(3, "little") * 2 + b"\0" * 8,
        "gif_frame_no_colour_table": b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0, 0, 0) + gif_frame,
        "gif_frame_colour_table": b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0" * 6 + gif_frame,
        "bmp": b"BM" + b"\0" * 12 + struct.pack("<Iii", 40, 30000, -30000) + b"\0" * 32,
        "jpeg_header_cut": b"\xff\xd8\xff\xe0\x00\x10JFIF",
    }


def attacks(path: str, escaped_mb: int) -> list:
    """(name, body, headers, allowed statuses)."""
    quotes = b'{"instances": ["' + b'\\"' * (escaped_mb << 19) + b'"]}'
    out = [
        ("escaped_quotes_gzip", gzip.compress(quotes), {"Content-Encoding": "gzip"}, {400}),
        ("escaped_quotes_64k", quotes[:65536] + b'"]}', None, {400}),
        ("unterminated_string", b'{"instances": ["' + b'\\"' * 200_000, None, {400}),
        ("pixel_budget_5x4000x4000", _b64(*[_png(4000, 4000, rows=1)] * 5), None, {400}),
        ("foreign_origin", pixels_body(test_images(1)), {"Origin": "https://evil.example"}, {403}),
        ("text_plain_post", pixels_body(test_images(1)), {"Content-Type": "text/plain"}, {415}),
        ("form_post", b"instances=1", {"Content-Type": "application/x-www-form-urlencoded"}, {415}),
        ("non_ascii_content_length", b"", {"Content-Length": "\u00b2"}, {400}),
    ]
    out += [(f"bomb_{name}", _b64(data), None, {400}) for name, data in image_bombs().items()]
    return out


def _raw(port: int, request: bytes, timeout: float) -> tuple:
    """Sends bytes as they are; (status or None, body, seconds)."""
    started = time.monotonic()
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.") else None
    return status, body, time.monotonic() - started


def raw_attacks(path: str) -> list:
    get = b"GET /v1/models/hostile HTTP/1.1\r\n"
    return [
        ("non_ascii_http_version", b"GET /v1/models/hostile HTTP/1.\xb2\r\nHost: localhost\r\n\r\n", {400}),
        ("foreign_host_dns_rebinding", get + b"Host: attacker.example:8501\r\nConnection: close\r\n\r\n", {403}),
        ("doubled_host", get + b"Host: localhost\r\nHost: attacker.example\r\nConnection: close\r\n\r\n", {400}),
    ]


def _idle_flood(port: int, path: str, good: bytes, timeout: float) -> dict:
    """max_connections + 1 sockets that say nothing, then one normal request."""
    idle = [socket.create_connection(("127.0.0.1", port), timeout=timeout) for _ in range(MAX_CONNECTIONS + 1)]
    try:
        time.sleep(0.5)
        status, _, seconds = http_request(port, "POST", path, good, timeout=timeout)
    finally:
        for sock in idle:
            sock.close()
    return {"idle_sockets": len(idle), "normal_status": status, "normal_seconds": round(seconds, 3)}


def _check(outcome: dict, name: str, status, data: bytes, seconds: float, allowed: set, limit: float):
    outcome["requests_sent"] += 1
    outcome["attacks"][name] = {"status": status, "seconds": round(seconds, 3)}
    if status is not None and status >= 500:
        outcome["5xx_count"] += 1
    if status not in allowed or seconds > limit or has_traceback(data):
        outcome["failures"].append(f"{name}: HTTP {status} in {seconds:.2f} s (want {sorted(allowed)} within "
                                   f"{limit} s): {data[:200]!r}")
    elif "error" not in json.loads(data or b"{}"):
        outcome["failures"].append(f"{name}: answer is not an {{'error'}} JSON: {data[:200]!r}")
    else:
        outcome["refused"] += 1


def run(workdir: str, escaped_mb: int = 9, fast_seconds: float = 5.0, rss_limit_mb: float = 200.0,
        timeout: float = 20.0) -> dict:
    """Sends every attack once, then the idle flood; checks answers, speed, liveness and memory."""
    started = time.monotonic()
    base = os.path.join(workdir, "saved_models", "hostile")
    export_model(base, seed=1)
    good = pixels_body(test_images(4))
    outcome = {"requests_sent": 0, "refused": 0, "5xx_count": 0, "crashes": 0, "attacks": {}, "failures": []}
    with ServerProcess(base, workdir, "--read_timeout_seconds=5", "--idle_timeout_seconds=30",
                       f"--set=serve.max_connections={MAX_CONNECTIONS}") as server:
        path = server.predict_path
        status, _, _ = http_request(server.port, "POST", path, good, timeout=timeout)
        outcome["requests_sent"] += 1
        if status != 200:
            outcome["failures"].append(f"warm-up request answered {status}")
        rss_before = rss_peak = server.rss_kb()
        for name, body, headers, allowed in attacks(path, escaped_mb):
            status, data, seconds = http_request(server.port, "POST", path, body, headers, timeout=timeout)
            _check(outcome, name, status, data, seconds, allowed, fast_seconds)
            rss_peak = max(rss_peak, server.rss_kb())
        for name, request, allowed in raw_attacks(path):
            status, data, seconds = _raw(server.port, request, timeout)
            _check(outcome, name, status, data, seconds, allowed, fast_seconds)
        flood = _idle_flood(server.port, path, good, timeout)
        outcome["idle_flood"] = flood
        outcome["requests_sent"] += 1
        if flood["normal_status"] != 200:
            outcome["failures"].append(f"a normal client got {flood['normal_status']} behind {flood['idle_sockets']} "
                                       f"idle sockets")
        status, _, _ = http_request(server.port, "POST", path, good, timeout=timeout)
        outcome["requests_sent"] += 1
        if status != 200:
            outcome["failures"].append(f"normal request after the attacks answered {status}")
        record_server_end(server, outcome, rss_before, rss_peak, rss_limit_mb)
        if outcome["server_log_has_traceback"]:
            outcome["failures"].append(f"server log has a traceback: {server.log_tail()}")
    outcome["seconds"] = round(time.monotonic() - started, 1)
    outcome["ok"] = not outcome["failures"] and not outcome["crashes"] and not outcome["5xx_count"]
    return outcome
