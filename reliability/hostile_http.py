"""Scenario 4: hostile requests to `fmkeras serve` (a real server process on 127.0.0.1).

Each attack must be answered with its expected 4xx within `timeout` seconds, as JSON with no
traceback text; the server must stay up, keep serving a normal client during a slowloris
attack, cut the slow connections off after its read timeout, and its RSS must grow less than
`rss_limit_mb`. Status codes follow TF Serving's mapping (InvalidArgument 400, NotFound 404,
ResourceExhausted 429, Unimplemented 501) plus 408/411/413/415 for HTTP-level refusals.
"""
from __future__ import annotations

import base64
import gzip
import json
import os
import socket
import struct
import threading
import time
import zlib

from reliability.serve_process import (Connection, ServerProcess, export_model, has_traceback, http_request,
                                       pixels_body, png_body, record_server_end, test_images)

READ_TIMEOUT = 2.0


def _gzip_bomb(inflated_mb: int) -> bytes:
    """A gzip stream of `inflated_mb` MB of '[' characters (about 1000:1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"[" * (1 << 20)
    return b"".join([packer.compress(chunk) for _ in range(inflated_mb)] + [packer.flush()])


def _png(width: int, height: int, rows: int = None) -> bytes:
    """A grayscale PNG of zeros; `rows` < height leaves the pixel data short (a header-only bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = (b"\0" * (width + 1)) * (height if rows is None else rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _b64_instances(*blobs) -> bytes:
    return json.dumps({"instances": [{"b64": base64.b64encode(b).decode()} for b in blobs]}).encode()


def attacks(path: str, gzip_bomb_mb: int = 1024) -> list:
    """(name, method, path, body, headers, allowed statuses)."""
    pixels = {"signature_name": "serve_pixels"}
    nested = b"[" * 100_000 + b"]" * 100_000
    return [
        ("deep_json_100k", "POST", path, nested, None, {400}),
        ("deep_json_objects", "POST", path, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, None, {400}),
        ("oversized_content_length", "POST", path, b"", {"Content-Length": str(10 ** 12)}, {413}),
        ("content_length_garbage", "POST", path, b"", {"Content-Length": "12abc"}, {400}),
        ("gzip_bomb", "POST", path, _gzip_bomb(gzip_bomb_mb), {"Content-Encoding": "gzip"}, {413}),
        ("gzip_ok", "POST", path, gzip.compress(pixels_body(test_images(2))), {"Content-Encoding": "gzip"}, {200}),
        ("gzip_truncated", "POST", path, gzip.compress(b'{"instances": []}')[:-6], {"Content-Encoding": "gzip"},
         {400}),
        ("unsupported_encoding", "POST", path, b"x", {"Content-Encoding": "br"}, {415}),
        ("invalid_utf8", "POST", path, b'{"instances": ["\xff\xfe\xfa"]}', None, {400}),
        ("lone_surrogate", "POST", path, b'{"instances": ["\\ud800"]}', None, {400}),
        ("ragged_pixels", "POST", path, json.dumps({**pixels, "inputs": {"pixels": [[[[1]]], [[[1], [2]]]]}}).encode(),
         None, {400}),
        ("string_in_uint8", "POST", path, json.dumps({**pixels, "inputs": [[[["a"]]]]}).encode(), None, {400}),
        ("float_in_uint8", "POST", path, json.dumps({**pixels, "inputs": [[[[0.5]]]]}).encode(), None, {400}),
        ("out_of_range_uint8", "POST", path, json.dumps({**pixels, "inputs": [[[[300]]]]}).encode(), None, {400}),
        ("number_as_image", "POST", path, json.dumps({"instances": [1, 2]}).encode(), None, {400}),
        ("huge_batch", "POST", path, json.dumps({**pixels, "inputs": [[[[0]]]] * 5000}).encode(), None, {400}),
        ("huge_batch_9mb", "POST", path, b'{"signature_name": "serve_pixels", "inputs": ['
         + b",".join([b"[[[0]]]"] * 1_200_000) + b"]}", None, {400, 413}),
        ("png_bomb_header_60000", "POST", path, _b64_instances(_png(60_000, 60_000, rows=1)), None, {400}),
        ("png_bomb_5000", "POST", path, _b64_instances(_png(5000, 5000)), None, {400}),
        ("not_an_image", "POST", path, _b64_instances(b"GIF89a garbage"), None, {400}),
        ("unknown_model", "POST", "/v1/models/nope:predict", b"{}", None, {404}),
        ("unknown_version", "GET", path.split(":")[0] + "/versions/99", None, None, {404}),
        ("classify_unimplemented", "POST", path.replace(":predict", ":classify"), b"{}", None, {501}),
        ("bad_version", "GET", path.split(":")[0] + "/versions/abc", None, None, {400}),
        ("chunked_body", "POST", path, None, {"Transfer-Encoding": "chunked"}, {411}),
    ]


def _slowloris(port: int, path: str, connections: int, interval: float, headers_only: bool) -> tuple:
    """Starts threads whose connections dribble a request one byte per `interval` s; returns (threads,
    results list they fill)."""
    results = []

    def one(index):
        sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT * 4)
        head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\n".encode()
        if not headers_only:
            head += b"Content-Length: 1000\r\n\r\n"
        started = time.monotonic()
        answer, closed_after = b"", None
        try:
            sock.sendall(head)
            for _ in range(int(READ_TIMEOUT * 6 / interval)):
                time.sleep(interval)
                try:
                    sock.sendall(b"X" if headers_only else b"1")
                except OSError:
                    break  # the server closed the connection
                sock.settimeout(0.001)
                try:
                    data = sock.recv(4096)
                except (socket.timeout, BlockingIOError):
                    data = None
                except OSError:
                    data = b""
                sock.settimeout(READ_TIMEOUT * 4)
                if data is not None:
                    answer += data
                    break
            sock.settimeout(READ_TIMEOUT * 4)
            try:
                while True:
                    data = sock.recv(4096)
                    if not data:
                        break
                    answer += data
            except OSError:
                pass
            closed_after = time.monotonic() - started
        finally:
            sock.close()
        status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None
        results.append({"index": index, "status": status, "closed_after": round(closed_after, 2),
                        "traceback": has_traceback(answer)})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    return threads, results


def run(workdir: str, slow_connections: int = 16, good_requests_during_slowloris: int = 40,
        rss_limit_mb: float = 200.0, timeout: float = 10.0, gzip_bomb_mb: int = 1024) -> dict:
    """Sends every attack once (and a slowloris wave), checking answers, liveness and memory."""
    started = time.monotonic()
    base = os.path.join(workdir, "saved_models", "hostile")
    export_model(base, seed=1)
    images = test_images(4)
    good = pixels_body(images)
    outcome = {"requests_sent": 0, "5xx_count": 0, "crashes": 0, "attacks": {}, "failures": []}
    with ServerProcess(base, workdir, f"--read_timeout_seconds={READ_TIMEOUT}") as server:
        path = server.predict_path
        for body in (good, png_body(images)):  # warm up both signatures before the RSS baseline
            status, data, _ = http_request(server.port, "POST", path, body, timeout=timeout)
            outcome["requests_sent"] += 1
            if status != 200:
                outcome["failures"].append(f"warm-up request answered {status}: {data[:200]!r}")
        rss_before = server.rss_kb()
        rss_peak = rss_before
        for name, method, url, body, headers, allowed in attacks(path, gzip_bomb_mb):
            status, data, seconds = http_request(server.port, method, url, body, headers, timeout=timeout)
            outcome["requests_sent"] += 1
            rss_peak = max(rss_peak, server.rss_kb())
            outcome["attacks"][name] = {"status": status, "seconds": round(seconds, 3)}
            if status is not None and status >= 500 and status not in allowed:
                outcome["5xx_count"] += 1  # (501 for an unimplemented method is TF Serving's answer)
            if status not in allowed or seconds > timeout or has_traceback(data):
                outcome["failures"].append(f"{name}: HTTP {status} in {seconds:.2f} s (want {sorted(allowed)}): "
                                           f"{data[:200]!r}")
            elif status != 200 and "error" not in json.loads(data):
                outcome["failures"].append(f"{name}: answer is not an {{'error'}} JSON: {data[:200]!r}")
            if not server.alive():
                outcome["crashes"] += 1
                outcome["failures"].append(f"server died on {name}: {server.log_tail()}")
                break
        if server.alive():
            outcome["slowloris"] = _slowloris_wave(server, path, good, slow_connections,
                                                   good_requests_during_slowloris, timeout, outcome)
            status, data, _ = http_request(server.port, "POST", path, good, timeout=timeout)
            outcome["requests_sent"] += 1
            if status != 200:
                outcome["failures"].append(f"normal request after the attacks answered {status}")
        record_server_end(server, outcome, rss_before, rss_peak, rss_limit_mb)
    outcome["seconds"] = round(time.monotonic() - started, 1)
    outcome["ok"] = not outcome["failures"] and not outcome["crashes"] and not outcome["5xx_count"]
    return outcome


def _slowloris_wave(server, path: str, good: bytes, connections: int, good_requests: int, timeout: float,
                    outcome: dict) -> dict:
    """Slow senders (half dribbling headers, half a body) while a normal client keeps getting answers."""
    half = connections // 2
    threads, slow = _slowloris(server.port, path, half, 0.25, headers_only=True)
    more, slow_body = _slowloris(server.port, path, connections - half, 0.25, headers_only=False)
    time.sleep(0.5)
    conn, latencies, bad = Connection(server.port, timeout), [], []
    for _ in range(good_requests):
        status, data, seconds = conn.send("POST", path, good)
        latencies.append(seconds)
        if status != 200:
            bad.append(status)
    conn.close()
    for t in threads + more:
        t.join(timeout=READ_TIMEOUT * 10)
    outcome["requests_sent"] += good_requests + connections
    results = slow + slow_body
    late = [r for r in results if r["closed_after"] is None or r["closed_after"] > READ_TIMEOUT + 2.0]
    wrong = [r for r in results if r["status"] != 408 or r["traceback"]]
    if bad:
        outcome["failures"].append(f"normal client got {bad[:5]} during the slowloris wave")
    if late or wrong or len(results) != connections:
        outcome["failures"].append(f"slow connections not cut off with a 408 within {READ_TIMEOUT + 2.0} s: "
                                   f"{(late + wrong)[:4]}")
    return {"connections": connections, "read_timeout_seconds": READ_TIMEOUT,
            "max_seconds_to_cut_off": max((r["closed_after"] or 0) for r in results) if results else None,
            "statuses": sorted({str(r["status"]) for r in results}),
            "normal_requests": good_requests, "normal_max_seconds": round(max(latencies), 3)}
