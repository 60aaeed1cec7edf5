"""Writes that cannot tear: a reader (or a crash) sees the old file or the new one, never half of one.

Each file is written to a unique temp file beside it (so two writers never share one), flushed
and fsynced, renamed over the target with os.replace, and the directory is fsynced so the rename
itself survives a power cut. A directory (an export) is fsynced file by file before the rename
that publishes it.

Example:
    write_json("runs/x/metrics.json", report)
    write_with(lambda tmp: model.save(tmp), "runs/x/model.keras")   # temp name keeps the suffix
"""
from __future__ import annotations

import json
import os
import tempfile


def fsync_dir(path: str):
    """Makes a rename inside `path` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str):
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def fsync_tree(directory: str):
    """fsyncs every file and directory under `directory`, deepest first."""
    for root, _, files in os.walk(directory, topdown=False):
        for name in files:
            fsync_file(os.path.join(root, name))
        fsync_dir(root)


def write_with(write_fn, path: str) -> str:
    """Calls `write_fn(tmp_path)` (tmp_path has `path`'s extension), then fsync + os.replace + dir fsync."""
    directory = os.path.dirname(os.path.abspath(path))
    stem, suffix = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{suffix}", dir=directory)
    os.close(fd)
    try:
        write_fn(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_dir(directory)
    return path


def write_bytes(path: str, data: bytes) -> str:
    def write(tmp):
        with open(tmp, "wb") as fh:
            fh.write(data)
    return write_with(write, path)


def write_json(path: str, values, indent: int = 2) -> str:
    """JSON (sorted keys) written atomically."""
    return write_bytes(path, json.dumps(values, indent=indent, sort_keys=True).encode("utf-8"))
