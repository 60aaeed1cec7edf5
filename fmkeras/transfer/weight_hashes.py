"""Pretrained-weight files are checked against a known hash before anything loads them.

Two sources of a known hash:
- a `.sha256` sidecar beside a weight file fmkeras wrote (`write_sha256_sidecar`; `fmkeras train`
  writes one for `model.keras` and the best weights), checked by `verify_sidecar`;
- the hash keras.applications passes to `get_file` for its preset files. Keras, on a hash
  mismatch in its cache, prints a note and re-downloads; `guard_keras_cache` makes a tampered
  cached file an error instead, before any network call.

Example:
    with guard_keras_cache():
        backbone = keras.applications.MobileNetV3Small(weights="imagenet", ...)
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import urllib.parse

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


def _cache_path(fname, origin, cache_subdir, cache_dir) -> str:
    from keras.src.backend import config  # where get_file itself reads the cache location
    base = os.path.expanduser(cache_dir or config.keras_home())
    name = fname or os.path.basename(urllib.parse.urlsplit(origin or "").path)
    return os.path.join(base, cache_subdir, str(name))


@contextlib.contextmanager
def guard_keras_cache():
    """While active, Keras' get_file refuses cached files whose hash does not match the known one."""
    from keras.src.utils import file_utils
    original = file_utils.get_file

    def guarded(fname=None, origin=None, *args, file_hash=None, md5_hash=None, cache_subdir="datasets",
                cache_dir=None, extract=False, untar=False, **kwargs):
        known = file_hash or md5_hash
        if not (extract or untar):
            path = _cache_path(fname, origin, cache_subdir, cache_dir)
            check_cached_file(path, known)
            if os.path.exists(path) and not known:
                log.warning("cached weights %s have no known hash; loading them unverified", path)
        return original(fname, origin, *args, file_hash=file_hash, md5_hash=md5_hash, cache_subdir=cache_subdir,
                        cache_dir=cache_dir, extract=extract, untar=untar, **kwargs)

    file_utils.get_file = guarded
    try:
        yield
    finally:
        file_utils.get_file = original
