"""Numbered version directories under a model's base path, published atomically.

A version is written into a hidden temp directory beside it, every file and directory in it is
fsynced, and it is renamed into place and the base path fsynced, so a reader (e.g. the server
polling the base path) never sees a half-written version, and neither does anyone after a crash
or power cut.
"""
from __future__ import annotations

import os
import shutil
import tempfile

from fmkeras.atomic_files import fsync_dir, fsync_tree


def list_versions(base_path: str) -> list:
    """Sorted integer versions that exist under `base_path` (temp dirs are ignored)."""
    if not os.path.isdir(base_path):
        return []
    return sorted(int(name) for name in os.listdir(base_path)
                  if name.isdigit() and os.path.isdir(os.path.join(base_path, name)))


def next_version(base_path: str) -> int:
    versions = list_versions(base_path)
    return versions[-1] + 1 if versions else 1


def publish_version(base_path: str, write_fn) -> tuple:
    """Calls `write_fn(tmp_dir)`, then renames tmp_dir to `base_path/<next version>`.

    Returns (version, path). On any error the temp dir is removed and nothing is published.
    """
    os.makedirs(base_path, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=base_path)
    try:
        write_fn(tmp)
        fsync_tree(tmp)  # the data must be on disk before the rename makes it visible
        for _ in range(100):
            version = next_version(base_path)
            target = os.path.join(base_path, str(version))
            try:
                os.rename(tmp, target)  # atomic on one filesystem; fails if another writer took it
                fsync_dir(base_path)  # ... and the rename itself must survive a crash
                return version, target
            except OSError:
                if not os.path.exists(target):
                    raise
        raise RuntimeError(f"could not claim a version number under {base_path}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
