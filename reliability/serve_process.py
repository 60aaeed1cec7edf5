"""`fmkeras serve` as a real subprocess for the serving scenarios (4, 5, 6, 9 REST, 10 server).

The server runs as `python -m fmkeras.cli.main serve --port=0` on 127.0.0.1; its URL is read
from the line it prints once it listens. Its RSS and open files are read from /proc/<pid>.
Every network call here has a timeout.

Example:
    export_model(base, seed=1)
    with ServerProcess(base, workdir, "--max_inflight=8") as server:
        status, body, seconds = http_request(server.port, "POST", server.predict_path, pixels_body(images))
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASS_NAMES = [f"class_{i}" for i in range(10)]
IMAGE_SHAPE = (28, 28, 1)
TRACEBACK_MARKERS = (b"Traceback", b'File "', b"site-packages")


def export_model(base_path: str, seed: int, target: str = None):
    """Exports a tiny untrained CNN (weights from `seed`) as the next version; returns (model, version dir)."""
    import keras
    from fmkeras.config import HeadConfig, ModelConfig
    from fmkeras.export import export_saved_model
    from fmkeras.transfer import build_classifier
    keras.utils.set_random_seed(seed)
    model = build_classifier(ModelConfig(backbone_options={"filters": (4, 8)}, head=HeadConfig(dense_units=(16,))),
                             IMAGE_SHAPE, len(CLASS_NAMES))
    _, path = export_saved_model(model, target or base_path, CLASS_NAMES, IMAGE_SHAPE)
    return model, path


def test_images(count: int = 8, seed: int = 0) -> np.ndarray:
    """Real Fashion-MNIST test images (uint8, N x 28 x 28 x 1)."""
    from fmkeras.data.idx import fashion_mnist_source
    images = fashion_mnist_source().x_test
    return images[np.random.default_rng(seed).choice(len(images), count, replace=False)]


def pixels_body(images: np.ndarray) -> bytes:
    return json.dumps({"signature_name": "serve_pixels", "inputs": {"pixels": images.tolist()}}).encode()


def png_body(images: np.ndarray) -> bytes:
    import tensorflow as tf
    pngs = [base64.b64encode(tf.io.encode_png(image).numpy()).decode() for image in images]
    return json.dumps({"instances": [{"b64": p} for p in pngs]}).encode()


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")


class ServerProcess:
    """`fmkeras serve --model_base_path=BASE --port=0 FLAGS...` in a subprocess; a context manager."""

    def __init__(self, base_path: str, workdir: str, *flags: str, start_timeout: float = 180.0):
        os.makedirs(workdir, exist_ok=True)
        self.log_path = os.path.join(workdir, f"serve-{time.time_ns()}.log")
        self._log = open(self.log_path, "w")
        cmd = [sys.executable, "-m", "fmkeras.cli.main", "serve", f"--model_base_path={base_path}",
               "--host=127.0.0.1", "--port=0", *flags]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=self._log, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self._wait_for_url(start_timeout)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.model = os.path.basename(os.path.normpath(base_path))
        self.predict_path = f"/v1/models/{self.model}:predict"

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            found = re.search(r" at (http://[\d.]+:\d+)/v1/models/", line)
            if found:
                return found.group(1)
        self.kill()
        raise RuntimeError(f"fmkeras serve did not start (rc={self.proc.poll()}): {self.log_tail()}")

    def log_tail(self, chars: int = 1500) -> str:
        self._log.flush()
        with open(self.log_path) as fh:
            return fh.read()[-chars:]

    def rss_kb(self) -> int:
        """Resident set size of the server process (VmRSS in /proc/<pid>/status)."""
        with open(f"/proc/{self.proc.pid}/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))

    def open_files(self) -> int:
        """Open file descriptors of the server process (entries of /proc/<pid>/fd)."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 60.0) -> tuple:
        """SIGTERM, then waits; returns (exit code, seconds). SIGKILLs (rc None) if it did not exit in time."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        return rc, time.monotonic() - started

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.alive():
            self.terminate(timeout=30)
        self._log.close()


class Connection:
    """One keep-alive HTTP/1.1 connection with a timeout, reopened after the server closes it."""

    def __init__(self, port: int, timeout: float = 30.0):
        self.port, self.timeout, self.conn = port, timeout, None

    def send(self, method: str, path: str, body: bytes = None, headers: dict = None) -> tuple:
        """Returns (status or None on a connection error, body bytes, seconds)."""
        started = time.monotonic()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            headers = dict(headers or {})
            if body is not None:
                headers.setdefault("Content-Length", str(len(body)))
                headers.setdefault("Content-Type", "application/json")
            self.conn.putrequest(method, path, skip_accept_encoding=True)
            for key, value in headers.items():
                self.conn.putheader(key, value)
            self.conn.endheaders(body)
            response = self.conn.getresponse()
            data = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, data, time.monotonic() - started
        except (OSError, http.client.HTTPException) as err:
            self.close()
            return None, f"{type(err).__name__}: {err}".encode(), time.monotonic() - started

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def http_request(port: int, method: str, path: str, body: bytes = None, headers: dict = None,
                 timeout: float = 30.0) -> tuple:
    """One request on a fresh connection: (status or None, body, seconds)."""
    conn = Connection(port, timeout)
    try:
        return conn.send(method, path, body, headers)
    finally:
        conn.close()


def probabilities(data: bytes) -> np.ndarray:
    """The probabilities of a predict response in either format."""
    reply = json.loads(data)
    if "outputs" in reply:
        return np.asarray(reply["outputs"]["probabilities"], dtype=np.float32)
    return np.asarray([row["probabilities"] for row in reply["predictions"]], dtype=np.float32)


def record_server_end(server, outcome: dict, rss_before: int, rss_peak: int, rss_limit_mb: float):
    """RSS growth (peak over the run, checked against `rss_limit_mb`), liveness and log tracebacks."""
    if server.alive():
        rss_after = server.rss_kb()
        peak = max(rss_peak, rss_after)
        growth = (peak - rss_before) / 1024
        outcome.update(rss_before_mb=round(rss_before / 1024, 1), rss_peak_mb=round(peak / 1024, 1),
                       rss_after_mb=round(rss_after / 1024, 1), rss_peak_growth_mb=round(growth, 1),
                       rss_limit_mb=rss_limit_mb)
        if growth > rss_limit_mb:
            outcome["failures"].append(f"peak RSS grew {growth:.0f} MB > {rss_limit_mb} MB")
    outcome["server_alive_at_end"] = server.alive()
    if not server.alive():
        outcome["crashes"] += 1
    outcome["server_log_has_traceback"] = "Traceback" in server.log_tail(1 << 20)


def has_traceback(data: bytes) -> bool:
    return any(marker in data for marker in TRACEBACK_MARKERS)


def percentile(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0
