"""`fmkeras serve`: a TF-Serving-compatible REST server for a model's exported versions.

SIGTERM (or Ctrl-C) drains: new connections are refused, requests in flight finish, and the
process exits 0, or 1 if some were still running after `--shutdown_grace_seconds`.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from absl import flags

from fmkeras.cli.flags import FLAGS
from fmkeras.errors import ConfigError, UserError

HELP = "serve saved_models/<name> over TF Serving's REST API: fmkeras serve --model_base_path=... --port=8501"

flags.DEFINE_string("model_base_path", None, "serve: directory holding numbered SavedModel versions.")
flags.DEFINE_string("host", None, "serve.host: address to bind (default 127.0.0.1).")
flags.DEFINE_integer("port", None, "serve.port (default 8501; 0 picks a free port).")
flags.DEFINE_list("versions", None, "serve.versions: pinned versions to serve, e.g. 1,3 (default: the latest).")
flags.DEFINE_list("version_labels", None, "serve.version_labels: label=version items, e.g. stable=1,canary=2.")
flags.DEFINE_integer("max_body_bytes", None, "serve.max_body_bytes: larger requests get HTTP 413.")
flags.DEFINE_integer("batch_max_size", None, "serve.batch_max_size: most images merged into one model call.")
flags.DEFINE_float("batch_timeout_ms", None, "serve.batch_timeout_ms: how long a batch waits for more requests.")
flags.DEFINE_float("poll_seconds", None, "serve.poll_seconds: how often the base path is scanned for versions.")
flags.DEFINE_integer("max_inflight", None, "serve.max_inflight: predictions at once; more get HTTP 429 at once.")
flags.DEFINE_float("read_timeout_seconds", None, "serve.read_timeout_seconds: a request must arrive within this "
                   "long (else HTTP 408; slow senders are cut off).")
flags.DEFINE_string("auth_token_file", None, "serve.auth_token_file: a file holding a bearer token every request "
                    "must send (Authorization: Bearer <token>); checked in constant time.")
flags.DEFINE_list("allowed_hosts", None, "serve.allowed_hosts: Host header names answered (default: loopback "
                  "names and the bind address); others get HTTP 403 (DNS rebinding).")
flags.DEFINE_float("idle_timeout_seconds", None, "serve.idle_timeout_seconds: idle connections are closed after "
                   "this long (and first when connections run out).")
flags.DEFINE_float("shutdown_grace_seconds", None, "serve.shutdown_grace_seconds: on SIGTERM, how long requests in "
                   "flight may still take.")

SERVE_FLAGS = ("model_base_path", "model_name", "host", "port", "max_body_bytes", "batch_max_size",
               "batch_timeout_ms", "poll_seconds", "max_inflight", "read_timeout_seconds", "shutdown_grace_seconds",
               "auth_token_file", "idle_timeout_seconds")


def _int(text: str, flag: str) -> int:
    if not text.strip().isdigit():
        raise ConfigError(f"--{flag} needs positive integer versions. Received: {text!r}")
    return int(text)


def serve_config():
    """The ServeConfig from --config/--set (section `serve`; a run's sections in the file are left out) and
    the serve flags. Settings of other commands (`--set train.epochs=3`) are refused by name."""
    from fmkeras.cli.resolve import resolve_config
    from fmkeras.config import ServeCommandConfig
    overrides = {f"serve.{name}": getattr(FLAGS, name) for name in SERVE_FLAGS if getattr(FLAGS, name) is not None}
    if FLAGS.versions is not None:
        overrides["serve.versions"] = [_int(v, "versions") for v in FLAGS.versions]
    if FLAGS.version_labels is not None:
        items = [item.split("=", 1) for item in FLAGS.version_labels]
        if any(len(item) != 2 for item in items):
            raise ConfigError(f"--version_labels needs label=version items. Received: {FLAGS.version_labels!r}")
        overrides["serve.version_labels"] = {k: _int(v, "version_labels") for k, v in items}
    if FLAGS.allowed_hosts is not None:
        overrides["serve.allowed_hosts"] = list(FLAGS.allowed_hosts)
    return resolve_config(FLAGS.recipe, FLAGS.config, FLAGS.set, overrides, cls=ServeCommandConfig).serve


def run() -> None:
    from fmkeras.serve import ModelServer
    from fmkeras.serve.access import exposure_warning
    cfg = serve_config()
    if not cfg.model_base_path:
        raise UserError("serve needs --model_base_path=saved_models/<name>")
    if not os.path.isdir(cfg.model_base_path):
        raise UserError(f"model base path not found: {cfg.model_base_path}")
    if cfg.auth_token_file and not os.path.isfile(cfg.auth_token_file):
        raise UserError(f"auth token file not found: {cfg.auth_token_file}")
    try:
        server = ModelServer(cfg)
    except ValueError as err:  # an empty token file
        raise UserError(str(err)) from None
    except OSError as err:
        raise UserError(f"cannot listen on {cfg.host}:{cfg.port}: {err.strerror}") from None
    warning = exposure_warning(cfg)
    if warning:
        print(f"fmkeras: {warning}", file=sys.stderr, flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"serving model {server.store.name!r} versions {server.store.refresh()} from {cfg.model_base_path} "
          f"at {server.url}/v1/models/{server.store.name}", flush=True)
    while not stop.wait(1.0):
        pass
    left = server.drain(cfg.shutdown_grace_seconds)
    if left:
        print(f"fmkeras: error: {left} requests still in flight after {cfg.shutdown_grace_seconds} s", file=sys.stderr,
              flush=True)
    else:
        print("drained: all requests in flight finished; exiting", flush=True)
    # Everything is answered and flushed; interpreter teardown with TensorFlow loaded takes 3-5 s on
    # 2 busy cores (measured), which would overrun the grace period the orchestrator gives us.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if left else 0)
