"""The `serve` section of `fmkeras serve`: the REST server, its limits and who may call it."""
from __future__ import annotations

import dataclasses
from typing import Optional

from fmkeras.config.section import ConfigSection, FieldCheck, positive_ints
from fmkeras.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ServeConfig(ConfigSection):
    """`fmkeras serve`: a TF-Serving-compatible REST server for `<model_base_path>/<version>/`.

    versions: pinned versions to serve; empty serves the latest complete version.
    version_labels: label -> version for `/labels/{label}` URLs (e.g. {"stable": 1}).
    batch_max_size / batch_timeout_ms: concurrent requests are merged into one model call of at
    most this many images, waiting at most this long for more to arrive.
    max_image_pixels: encoded images whose header claims more pixels are refused (decompression bombs).
    max_connections: open connections beyond this get HTTP 503 and are closed.
    max_inflight: predict requests handled at once; more get an immediate HTTP 429 (bounded queue).
    read_timeout_seconds: a request (headers and body) must arrive within this long, else HTTP 408 and
    the connection is closed (slowloris); also how long an idle keep-alive connection is kept.
    shutdown_grace_seconds: on SIGTERM, how long in-flight requests may take before the server exits.
    max_json_containers: bodies with more JSON arrays/objects are refused before parsing (each costs
    ~60 bytes of Python memory: 9 MB of "[[[0]]]," would otherwise take ~370 MB to parse).
    max_request_pixels: the images of one request may declare at most this many pixels together.
    idle_timeout_seconds: a connection that sends nothing for this long is closed; when all
    `max_connections` are taken, idle ones are closed first to make room.
    max_connections_per_client: connections one client address may hold (beyond: its idle ones are
    closed to make room, else HTTP 503).
    allowed_hosts: Host header names accepted (port ignored; `*` accepts any); others get HTTP 403,
    which stops DNS rebinding. The bind address is always accepted.
    allowed_origins: browser origins (e.g. http://localhost:3000) allowed to call the server; any
    other Origin header gets HTTP 403.
    auth_token_file: a file holding a bearer token every request must send (`Authorization: Bearer ...`).
    """
    PATH = "serve"

    model_base_path: Optional[str] = None
    model_name: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8501
    versions: tuple = ()
    version_labels: dict = dataclasses.field(default_factory=dict)
    poll_seconds: float = 1.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_json_depth: int = 32
    max_batch_instances: int = 1024
    max_image_pixels: int = 4096 * 4096
    max_connections: int = 64
    batch_max_size: int = 8
    batch_timeout_ms: float = 2.0
    max_queue: int = 256
    request_timeout_seconds: float = 30.0
    max_inflight: int = 32
    max_json_containers: int = 1_000_000
    read_timeout_seconds: float = 30.0
    shutdown_grace_seconds: float = 10.0
    max_request_pixels: int = 4 * 4096 * 4096
    idle_timeout_seconds: float = 5.0
    max_connections_per_client: int = 32
    allowed_hosts: tuple = ("localhost", "127.0.0.1", "::1")
    allowed_origins: tuple = ()
    auth_token_file: Optional[str] = None

    def check(self, c: FieldCheck):
        c.range("port", 0, 65535)
        for name in ("max_body_bytes", "max_json_depth", "max_batch_instances", "max_image_pixels", "max_connections",
                     "batch_max_size", "max_queue", "max_inflight", "max_json_containers", "max_request_pixels",
                     "max_connections_per_client"):
            c.range(name, 1)
        for name in ("poll_seconds", "request_timeout_seconds", "read_timeout_seconds", "shutdown_grace_seconds",
                     "idle_timeout_seconds"):
            c.range(name, 0.0, low_open=True)
        c.range("batch_timeout_ms", 0.0)
        if not positive_ints(self.versions):
            raise ConfigError(f"`{c.path('versions')}` must be positive integers. "
                              f"Received: {c.path('versions')}={self.versions!r}")
        if not positive_ints(self.version_labels.values()):
            raise ConfigError(f"`{c.path('version_labels')}` must map labels to positive integer versions. "
                              f"Received: {c.path('version_labels')}={self.version_labels!r}")
        for name in ("allowed_hosts", "allowed_origins"):
            if not all(isinstance(v, str) and v for v in getattr(self, name)):
                raise ConfigError(f"`{c.path(name)}` must be non-empty strings. "
                                  f"Received: {c.path(name)}={getattr(self, name)!r}")


def validate_serve(s: ServeConfig) -> ServeConfig:
    """Checks the serve section's ranges; returns it unchanged or raises ConfigError."""
    return s.validate()
