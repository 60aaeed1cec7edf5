"""Scenario 10 (server half): graceful SIGTERM of `fmkeras serve`.

`in_flight` requests are mid-upload (headers and half the body sent) and one keep-alive
connection is idle when the server gets SIGTERM. Then:
  - a new connection must be refused (the listening socket is closed),
  - a new request on the idle keep-alive connection must get 503 (refused, not run),
  - the in-flight uploads are finished and each must get 200 with the right prediction,
  - the process must exit 0 within `--shutdown_grace_seconds`.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import numpy as np

from reliability.serve_process import Connection, ServerProcess, export_model, pixels_body, probabilities, test_images


def _start_upload(port: int, path: str, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])
    return sock


def _finish_upload(sock: socket.socket, body: bytes) -> tuple:
    """Sends the rest of the body; returns (status, response body)."""
    try:
        sock.sendall(body[len(body) // 2:])
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as err:
        return None, str(err).encode()
    finally:
        sock.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return (int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else None), rest


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def run(workdir: str, in_flight: int = 4, grace_seconds: float = 10.0, upload_pause: float = 1.0) -> dict:
    started = time.monotonic()
    base = os.path.join(workdir, "saved_models", "term")
    model, _ = export_model(base, seed=1)
    images = test_images(in_flight, seed=5)
    expected = model.predict(images.astype("float32"), verbose=0)
    failures = []
    with ServerProcess(base, workdir, f"--shutdown_grace_seconds={grace_seconds}") as server:
        path = server.predict_path
        idle = Connection(server.port, 10)
        first = idle.send("POST", path, pixels_body(images[:1]))[0]
        bodies = [pixels_body(images[i:i + 1]) for i in range(in_flight)]
        uploads = [_start_upload(server.port, path, b) for b in bodies]
        time.sleep(0.3)  # the server has read their headers: they are in flight
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(upload_pause)  # the server is draining now
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
            new_connection = "accepted"
        except ConnectionRefusedError:
            new_connection = "refused"
        except OSError as err:
            new_connection = f"error: {err}"
        refused_status = idle.send("POST", path, bodies[0])[0]
        idle.close()
        answers = [_finish_upload(sock, body) for sock, body in zip(uploads, bodies)]
        try:
            rc = server.proc.wait(timeout=grace_seconds + 30)
        except subprocess.TimeoutExpired:  # a hung server is the failure being measured
            server.kill()
            rc = None
        exit_seconds = time.monotonic() - signalled
        stdout = "".join(server.lines.queue)
    statuses = [s for s, _ in answers]
    correct = sum(1 for (s, data), want in zip(answers, expected)
                  if s == 200 and np.allclose(probabilities(data)[0], want, atol=1e-5))
    if first != 200:
        failures.append(f"request before SIGTERM answered {first}")
    if correct != in_flight:
        failures.append(f"in-flight requests: {statuses}, {correct}/{in_flight} correct 200s")
    if new_connection != "refused":
        failures.append(f"a new connection while draining was {new_connection}")
    if refused_status not in (503, None):
        failures.append(f"a new request on a kept-alive connection while draining got {refused_status}")
    if rc != 0 or exit_seconds > grace_seconds + 3:  # (the CLI notices the signal within 1 s)
        failures.append(f"exit code {rc} after {exit_seconds:.1f} s (grace {grace_seconds} s)")
    return {"ok": not failures, "failures": failures, "in_flight": in_flight, "in_flight_statuses": statuses,
            "in_flight_correct": correct, "new_connection": new_connection, "kept_alive_request": refused_status,
            "exit_code": rc, "exit_seconds": round(exit_seconds, 2), "grace_seconds": grace_seconds,
            "drained_message": "drained" in stdout, "requests_sent": 2 + in_flight,
            "5xx_count": sum(1 for s in statuses if s is not None and s >= 500), "refused_503": int(refused_status == 503),
            "crashes": int(rc is None), "seconds": round(time.monotonic() - started, 1)}
