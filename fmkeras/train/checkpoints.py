"""Step checkpoints as ONE self-verifying file each, written atomically.

Keras' BackupAndRestore writes `latest.weights.h5` in place and then a separate metadata JSON,
so a crash between the two pairs weights with the wrong epoch. Here a checkpoint is a single
file: a header (magic, payload length, SHA-256 of the payload) followed by an `.npz` payload
that holds every array (weights, optimizer and seed state) AND the metadata JSON (epoch,
global step, callback state). It is written to a temp file, fsynced, renamed over its final
name and the directory fsynced; older checkpoints are deleted only after the new one is in
place, so at every instant the newest complete checkpoint is on disk. Loading verifies the
length and checksum and falls back to the previous file when the newest one is torn.

Example:
    store = CheckpointStore("runs/x/resume/train", keep=2)
    store.save(120, {"w/0": w0}, {"epoch": 3})
    found = store.load_latest()        # -> LoadedCheckpoint or None; found.rejected lists torn files
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import struct

import numpy as np

from fmkeras.atomic_files import fsync_dir
from fmkeras.errors import DataError

log = logging.getLogger("fmkeras")

MAGIC = b"FMKCKPT1"
_HEADER = struct.Struct(">8sQ32s")  # magic, payload length, sha256(payload)
_NAME = re.compile(r"^step-(\d{10})\.ckpt$")
_META_KEY = "__meta__"


class CheckpointCorrupt(DataError):
    """A checkpoint file is truncated, bit-flipped or not a checkpoint; the message says which."""


@dataclasses.dataclass
class LoadedCheckpoint:
    """The newest valid checkpoint: its arrays, metadata, path, and the newer files that were rejected."""
    arrays: dict
    meta: dict
    path: str
    rejected: list  # [(path, reason)] newer files that failed verification


def write_atomic(path: str, data: bytes):
    """Writes `data` to `path` via temp file + fsync + os.replace + directory fsync."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(directory)


def pack(arrays: dict, meta: dict) -> bytes:
    """Serialises arrays + JSON metadata into one checksummed blob."""
    buf = io.BytesIO()
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload[_META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(buf, **payload)
    body = buf.getvalue()
    return _HEADER.pack(MAGIC, len(body), hashlib.sha256(body).digest()) + body


def unpack(blob: bytes, name: str = "checkpoint") -> tuple:
    """Verifies and decodes a blob from `pack`; returns (arrays, meta) or raises CheckpointCorrupt."""
    if len(blob) < _HEADER.size:
        raise CheckpointCorrupt(f"{name}: truncated header ({len(blob)} bytes)")
    magic, length, digest = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise CheckpointCorrupt(f"{name}: not an fmkeras checkpoint (magic {magic!r})")
    body = blob[_HEADER.size:]
    if len(body) != length:
        raise CheckpointCorrupt(f"{name}: truncated: payload has {len(body)} of {length} bytes")
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointCorrupt(f"{name}: checksum mismatch (file was modified or torn)")
    with np.load(io.BytesIO(body), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays.pop(_META_KEY).tobytes().decode())
    return arrays, meta


class CheckpointStore:
    """A directory of `step-<global step>.ckpt` files; keeps the newest `keep` (>= 2)."""

    def __init__(self, directory: str, keep: int = 2):
        self.directory = directory
        self.keep = max(2, keep)  # the previous file must survive until the new one is complete

    def path_for(self, step: int) -> str:
        return os.path.join(self.directory, f"step-{step:010d}.ckpt")

    def steps(self) -> list:
        """Global steps of the checkpoint files present, newest first (temp files ignored)."""
        if not os.path.isdir(self.directory):
            return []
        found = [int(m.group(1)) for m in map(_NAME.match, os.listdir(self.directory)) if m]
        return sorted(found, reverse=True)

    def save(self, step: int, arrays: dict, meta: dict) -> str:
        """Writes the checkpoint for `step` atomically, then prunes older files."""
        os.makedirs(self.directory, exist_ok=True)
        path = self.path_for(step)
        write_atomic(path, pack(arrays, {**meta, "global_step": step}))
        for old in self.steps()[self.keep:]:
            os.remove(self.path_for(old))
        self._remove_stale_temps()
        return path

    def _remove_stale_temps(self):
        # Temp files left by a process killed mid-write; ours was just renamed away.
        for name in os.listdir(self.directory):
            if name.startswith(".step-") and ".tmp-" in name:
                try:
                    os.remove(os.path.join(self.directory, name))
                except FileNotFoundError:
                    pass

    def load_latest(self):
        """The newest checkpoint that verifies, or None when there is none at all.

        Newer files that fail verification are logged and listed in `rejected`; when every
        file is corrupt a CheckpointCorrupt names them (never a silent restart from scratch).
        """
        rejected = []
        for step in self.steps():
            path = self.path_for(step)
            try:
                with open(path, "rb") as fh:
                    arrays, meta = unpack(fh.read(), path)
            except CheckpointCorrupt as err:
                log.warning("ignoring corrupt checkpoint: %s", err)
                rejected.append((path, str(err)))
                continue
            if meta.get("global_step") != step:
                reason = f"{path}: holds step {meta.get('global_step')}, name says {step}"
                log.warning("ignoring corrupt checkpoint: %s", reason)
                rejected.append((path, reason))
                continue
            return LoadedCheckpoint(arrays=arrays, meta=meta, path=path, rejected=rejected)
        if rejected:
            raise CheckpointCorrupt(
                f"every checkpoint in {self.directory} is corrupt ({'; '.join(r for _, r in rejected)}); "
                f"delete {self.directory} to train from scratch")
        return None
