"""File caches that survive a killed run: one owner per cache prefix, stale TF lock files cleared.

`tf.data.Dataset.cache(path)` writes `<path>_0.lockfile` and a temporary data file while it fills
the cache and renames them at the end. A run killed mid-epoch leaves the lock file behind and
every later run fails with "There appears to be a concurrent caching iterator running". fmkeras
holds an advisory lock (`fcntl.flock` on `<path>.owner`) for the life of the process that owns a
prefix; when it gets that lock, no other fmkeras process is writing the prefix, so leftover
lock and temporary files are stale and are removed. If another live process holds it, this
process caches in memory instead (and says so) rather than racing it.

Example:
    path = claim_cache_prefix("./cache/train-1a2b3c")   # None: another process owns it
    ds = ds.cache(path) if path else ds.cache()
"""
from __future__ import annotations

import fcntl
import glob
import logging
import os

log = logging.getLogger(__name__)
_OWNED: dict = {}  # prefix -> open file object holding the flock until the process exits


def _stale_files(prefix: str) -> list:
    """TF's lock files and unfinished data files of `prefix` (finished caches have an .index and no temp)."""
    return sorted(glob.glob(glob.escape(prefix) + "_*.lockfile")
                  + glob.glob(glob.escape(prefix) + "*.tempstate*"))


def claim_cache_prefix(prefix: str):
    """Returns `prefix` once this process owns it (stale files removed), or None if another process does."""
    prefix = os.path.abspath(prefix)
    if prefix in _OWNED:
        return prefix
    handle = open(prefix + ".owner", "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        log.warning("file cache %s is being written by another process; caching in memory instead", prefix)
        return None
    stale = _stale_files(prefix)
    for path in stale:
        os.remove(path)
    if stale:
        log.warning("removed %d leftover file(s) of an interrupted cache write: %s", len(stale),
                    ", ".join(os.path.basename(p) for p in stale))
    _OWNED[prefix] = handle
    return prefix
