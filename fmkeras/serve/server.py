"""A TensorFlow-Serving-compatible REST server for exported fmkeras SavedModels.

Endpoints (as TF Serving's REST API):
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            -> {"model_version_status": [...]}
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   -> {"model_spec", "metadata": {"signature_def"}}
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    -> {"predictions"} or {"outputs"}
Errors are `{"error": "..."}` with TF Serving's HTTP codes (see status.py). Bodies over
`max_body_bytes` are refused from their Content-Length before a byte of them is read; gzip
bodies are inflated up to the same cap. A request must arrive whole within
`read_timeout_seconds` (a watchdog closes slow senders with a 408); at most `max_inflight`
predictions run at once (more get a fast 429). `drain()` is the graceful stop used on SIGTERM.

Security model (docs/serving-security.md): only Host names on `allowed_hosts` (loopback by
default) and no foreign browser Origin are served, so a web page or DNS rebinding cannot drive
a local server; predict takes `application/json` only; an optional bearer token
(`auth_token_file`) is compared in constant time. Idle connections are closed after
`idle_timeout_seconds`, and closed first when connections run out, so idle sockets cannot
lock clients out; one client address holds at most `max_connections_per_client`.

Example:
    server = ModelServer(ServeConfig(model_base_path="saved_models/fashion", port=8501))
    server.serve_forever()
"""
from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fmkeras.config import ServeConfig
from fmkeras.serve.access import AccessPolicy, check_content_type
from fmkeras.serve.batcher import Batcher
from fmkeras.serve.connections import ConnectionLimits, client_of
from fmkeras.serve.image_header import check_image_sizes
from fmkeras.serve.model_store import ModelStore
from fmkeras.serve.read_deadline import ReadDeadlines
from fmkeras.serve.request import decode_body, format_predict, load_json, parse_predict
from fmkeras.serve.status import (InvalidArgument, LengthRequired, MethodNotAllowed, NotFound, PayloadTooLarge,
                                  RequestTimeout, ResourceExhausted, ServingError, Unavailable, Unimplemented)

log = logging.getLogger("fmkeras.serve")
_MODEL_URL = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
                        r"(?P<suffix>/metadata|:[A-Za-z]+)?/?$")


class ModelServer(ThreadingHTTPServer):
    """Serves one model's versions; `serve_forever()` until `shutdown()`, then `close()`."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog; socketserver's 5 drops SYNs when many clients connect at once

    def __init__(self, cfg: ServeConfig, store: ModelStore = None):
        self.cfg = cfg
        self.store = store or ModelStore(cfg.model_base_path, cfg.model_name, cfg.versions, cfg.version_labels,
                                         cfg.poll_seconds).start()
        self.batcher = Batcher(cfg.batch_max_size, cfg.batch_timeout_ms, cfg.max_queue, cfg.request_timeout_seconds)
        self.connections = ConnectionLimits(cfg.max_connections, cfg.max_connections_per_client)
        self.access = AccessPolicy(cfg)
        self._predicting = threading.BoundedSemaphore(cfg.max_inflight)
        self._active, self._draining = 0, False  # requests being handled; set by drain()
        self._active_changed = threading.Condition()
        self.read_deadlines = ReadDeadlines(cfg.read_timeout_seconds)
        super().__init__((cfg.host, cfg.port), RequestHandler)

    def process_request(self, request, client_address):
        """One thread per connection within the connection limits (connections.py); else a 503 and close."""
        client = client_of(client_address)
        refusal = self.connections.admit(client)
        if refusal is not None:
            body = json.dumps({"error": refusal}).encode()
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass  # the client is gone already
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.release(client)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release(client_of(client_address))

    @property
    def evicted_idle(self) -> int:
        return self.connections.evicted_idle

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ModelServer":
        """Serves in a daemon thread (tests, benchmarks); returns self."""
        threading.Thread(target=self.serve_forever, name="rest-server", daemon=True).start()
        return self

    def close(self):
        """Stops serving, the batcher and the version watcher; frees the port."""
        self.shutdown()
        self.server_close()
        self.read_deadlines.stop()
        self.batcher.stop()
        self.store.stop()

    def drain(self, grace_seconds: float) -> int:
        """Graceful stop: closes the listening socket (new connections are refused), answers new requests
        on open connections with 503, waits up to `grace_seconds` for requests in flight, then stops.

        Call from a thread other than the one in `serve_forever`. Returns how many requests were still
        in flight when the grace period ended (0 when all finished).
        """
        with self._active_changed:
            self._draining = True
        self.shutdown()
        self.server_close()
        deadline = time.monotonic() + grace_seconds
        with self._active_changed:
            while self._active and time.monotonic() < deadline:
                self._active_changed.wait(deadline - time.monotonic())
            left = self._active
        self.read_deadlines.stop()
        self.batcher.stop()
        self.store.stop()
        return left

    @contextlib.contextmanager
    def request_scope(self):
        """Counts one request being handled, so `drain()` can wait for it; refuses new ones while draining."""
        with self._active_changed:
            if self._draining:
                raise Unavailable("server is shutting down; retry on another replica")
            self._active += 1
        try:
            yield
        finally:
            with self._active_changed:
                self._active -= 1
                self._active_changed.notify_all()

    # --- endpoint logic, independent of HTTP plumbing ---
    def _servable(self, match, name: str):
        if name != self.store.name:
            raise NotFound(f"Servable not found for request: Latest({name})")
        version = match.group("version")
        if version is not None and not version.isdigit():
            raise InvalidArgument(f"Malformed request: version '{version}' must be an integer")
        return self.store.get(int(version) if version else None, match.group("label"))

    def status(self, match) -> dict:
        name, version, label = match.group("name"), match.group("version"), match.group("label")
        if name != self.store.name:
            raise NotFound(f"Could not find any versions of model {name}")
        if label is not None:
            version = str(self.store.get(label=label).version)
        if version is not None and not version.isdigit():
            raise InvalidArgument(f"Malformed request: version '{version}' must be an integer")
        return {"model_version_status": self.store.status(int(version) if version else None)}

    def metadata(self, match) -> dict:
        served = self._servable(match, match.group("name"))
        return {"model_spec": {"name": served.name, "signature_name": "", "version": str(served.version)},
                "metadata": {"signature_def": {"signature_def": served.signature_defs},
                             "fmkeras": served.metadata}}

    def predict(self, match, body: bytes) -> dict:
        if not self._predicting.acquire(blocking=False):  # shed load fast instead of queueing without bound
            raise ResourceExhausted(f"{self.cfg.max_inflight} predict requests in flight (serve.max_inflight); "
                                    f"retry later")
        try:
            with self.batcher.track():
                return self._predict(match, body)
        finally:
            self._predicting.release()

    def _predict(self, match, body: bytes) -> dict:
        served = self._servable(match, match.group("name"))
        request = load_json(body, self.cfg.max_json_depth, self.cfg.max_json_containers)
        signature, inputs, fmt = parse_predict(request, served.input_specs, self.cfg.max_batch_instances)
        if served.metadata.get("modality") != "text":  # text inputs are not images, whatever their first bytes
            budget = self.cfg.max_request_pixels
            for name, array in inputs.items():
                if array.dtype == object:
                    try:
                        budget -= check_image_sizes(array, self.cfg.max_image_pixels, name, budget)
                    except ValueError as err:
                        raise InvalidArgument(str(err)) from None
        count = len(next(iter(inputs.values())))
        if count > self.cfg.max_batch_instances:
            raise InvalidArgument(f"{count} instances exceed the limit of {self.cfg.max_batch_instances} per request")
        return format_predict(self.batcher.predict(served, signature, inputs), fmt)


class RequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; every answer is JSON with a Content-Length."""
    protocol_version = "HTTP/1.1"
    server_version = "fmkeras-serve"
    timed_out = False  # set by the server's read watchdog
    idle_since = None  # monotonic time the connection started waiting for a request; None while busy
    evicted = False    # closed by the server to make room for another connection

    def setup(self):
        self.timeout = self.server.cfg.read_timeout_seconds  # per recv; the watchdog bounds the whole request
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.register(self, client_of(self.client_address))

    def finish(self):
        self.server.connections.unregister(self)
        super().finish()

    def _await_request(self) -> bool:
        """Waits up to `idle_timeout_seconds` for the first byte of a request; False if none came."""
        self.server.connections.set_idle(self, True)
        try:
            self.connection.settimeout(self.server.cfg.idle_timeout_seconds)
            return bool(self.rfile.peek(1)) and not self.evicted
        except (OSError, ValueError):  # timeout, reset, or closed to make room
            return False
        finally:
            self.server.connections.set_idle(self, False)
            try:
                self.connection.settimeout(self.timeout)
            except OSError:
                pass

    def handle_one_request(self):
        if not self._await_request():
            self.close_connection = True  # idle: close quietly, as HTTP servers do with idle keep-alives
            return
        self.server.read_deadlines.start(self)
        try:
            super().handle_one_request()
        finally:
            self.server.read_deadlines.end(self)

    def parse_request(self) -> bool:
        """The request line and headers; a 408 instead when they did not arrive in time."""
        if not self.timed_out:
            ok = super().parse_request()
            if not ok or not self.timed_out:
                return ok  # (a failed parse has answered already)
        else:  # the request line itself was late; parse_request has not set these
            self.command, self.request_version, self.requestline = None, self.protocol_version, ""
        self.close_connection = True
        self.send_json(408, {"error": f"request not received within {self.server.cfg.read_timeout_seconds} s"})
        return False

    def log_message(self, fmt, *args):
        log.debug("%s " + fmt, self.address_string(), *args)

    def send_json(self, code: int, payload: dict, headers: dict = None):
        data = json.dumps(payload).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        # Headers and body in one write: two small writes meet Nagle + delayed ACK (a 40 ms stall).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(data)
        self.flush_headers()

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, unknown method) as JSON too."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # refused before its version was read (e.g. "HTTP/1.\xb2"):
            self.request_version = self.protocol_version  # answer with a status line, not a bare body
        if code == 501 and self.command and not hasattr(type(self), "do_" + self.command):
            code, message = 405, f"Unsupported method: {self.command}"
        self.send_json(int(code), {"error": message or explain or "bad request"})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise LengthRequired("chunked bodies are not accepted: send a Content-Length")
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command == "POST":
                raise LengthRequired("a POST needs a Content-Length header")
            return b""
        if not (length.strip().isascii() and length.strip().isdigit()):  # int() would read "١٢" as 12
            raise InvalidArgument(f"bad Content-Length: {length[:40]!r}")
        length = int(length)
        if length > self.server.cfg.max_body_bytes:
            raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of "
                                  f"{self.server.cfg.max_body_bytes} bytes")
        body = self.rfile.read(length)
        if len(body) != length:
            if self.timed_out:
                raise RequestTimeout(f"request body not received within {self.server.cfg.read_timeout_seconds} s")
            raise InvalidArgument(f"request body ended after {len(body)} of {length} bytes")
        return decode_body(body, self.headers.get("Content-Encoding"), self.server.cfg.max_body_bytes)

    def _handle(self, method: str):
        try:
            with self.server.request_scope():
                self._respond(method)
        except ServingError as err:  # refused while draining
            self.close_connection = True
            self.send_json(err.http_code, {"error": err.message})

    def _respond(self, method: str):
        try:
            try:
                self.server.access.check(self.headers)
                body = self._read_body()
            except ServingError:
                self.close_connection = True  # the unread body would be parsed as the next request
                raise
            finally:
                self.server.read_deadlines.end(self)
            path = self.path.split("?", 1)[0]
            match = _MODEL_URL.match(path)
            if not path.startswith("/v1/models"):
                raise NotFound(f"Not found: {method} {path[:200]}")
            if match is None:
                raise InvalidArgument(f"Malformed request: {method} {path[:200]}")
            suffix = match.group("suffix") or ""
            if suffix.startswith(":"):
                if method != "POST":
                    raise MethodNotAllowed(f"{suffix[1:]} needs POST, got {method}", allow="POST")
                if suffix != ":predict":
                    raise Unimplemented(f"{suffix[1:]} is not implemented; this server implements :predict")
                check_content_type(self.headers)
                payload = self.server.predict(match, body)
            else:
                if method != "GET":
                    raise MethodNotAllowed(f"{path[:200]} needs GET, got {method}", allow="GET")
                payload = self.server.metadata(match) if suffix == "/metadata" else self.server.status(match)
            self.send_json(200, payload)
        except ServingError as err:
            headers = {"Allow": err.allow} if err.allow else {}
            if err.http_code == 401:
                headers["WWW-Authenticate"] = "Bearer"
            self.send_json(err.http_code, {"error": err.message}, headers)
        except Exception as err:  # a bug must answer 500, not kill the connection thread silently
            log.exception("unhandled error for %s %s", method, self.path)
            self.close_connection = True
            self.send_json(500, {"error": f"internal error: {type(err).__name__}"})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_OPTIONS(self):
        self._handle("OPTIONS")
