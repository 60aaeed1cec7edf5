"""Pretrained-weight files are checked against a known hash before anything loads them.

Two sources of a known hash:
- a `.sha256` sidecar beside a weight file fmkeras wrote (`write_sha256_sidecar`; `fmkeras train`
  writes one for `model.keras` and the best weights), checked by `verify_sidecar`;
- the hash a backbone preset declares for its file (fmkeras.backbones), checked by `check_cached_file`
  before fmkeras.transfer.weights loads a cached preset file: a tampered file is an error, never
  re-downloaded over or loaded.

Example:
    check_cached_file(path, preset.file_hash)
"""
from __future__ import annotations

import hashlib
import logging
import os

from fmkeras.atomic_files import write_bytes
from fmkeras.errors import WeightsError

log = logging.getLogger("fmkeras")
SIDECAR = ".sha256"


def file_digest(path: str, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def write_sha256_sidecar(path: str) -> str:
    """Writes `<path>.sha256` ("<hex>  <name>", like sha256sum) and returns the digest."""
    digest = file_digest(path)
    write_bytes(path + SIDECAR, f"{digest}  {os.path.basename(path)}\n".encode())
    return digest


def verify_sidecar(path: str) -> bool:
    """True if `path` has a sidecar and matches it; False if it has none; WeightsError on mismatch."""
    sidecar = path + SIDECAR
    if not os.path.isfile(sidecar):
        return False
    with open(sidecar) as fh:
        expected = fh.read().split()[0].lower() if os.path.getsize(sidecar) else ""
    actual = file_digest(path)
    if actual != expected:
        raise WeightsError(f"{path}: sha256 {actual} does not match the known hash {expected or '(empty)'} "
                           f"in {sidecar}; the file was modified or corrupted, refusing to load it")
    return True


def check_cached_file(path: str, file_hash: str):
    """Raises WeightsError if `path` exists and does not match `file_hash` (sha256 or legacy md5)."""
    if not os.path.exists(path) or not file_hash:
        return
    algorithm = "sha256" if len(file_hash) == 64 else "md5"
    actual = file_digest(path, algorithm)
    if actual != file_hash:
        raise WeightsError(f"cached weights {path} are tampered or corrupt: {algorithm} {actual} != known "
                           f"{file_hash}; refusing to load them (and not re-downloading over them). Delete "
                           f"the file to download it again, or place the genuine file there")
