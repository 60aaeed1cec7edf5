"""The Debian package descriptions set as a committed snapshot, so `text:debian` is the same on every machine.

fmkeras.data.debian_packages reads the set from the apt lists of the machine it runs on, and those differ
between machines and change with every `apt-get update`. The snapshot (`corpora/debian_packages.jsonl.gz`,
shipped as package data) holds the rows that reader produced once: one JSON object per line with keys
`package`, `section` and `text`, sorted by package name, gzip with mtime 0, so writing it again from the same
apt lists gives the same bytes. `SNAPSHOT_SHA256` pins those bytes, and loading refuses any other file. The
sidecar `corpora/debian_packages.manifest.json` records the apt list files it came from (with their sha256,
modification times and release dates), the count per section and the default split.

Regenerate from this machine's apt lists (then put the printed sha256 into SNAPSHOT_SHA256):
    python -m fmkeras.data.debian_snapshot fmkeras/data/corpora/debian_packages.jsonl.gz
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import sys

import importlib_resources

from fmkeras.data.debian_packages import (APT_LISTS_DIR, DEFAULT_SECTIONS, TEST_FRACTION, fixed_seed_splits,
                                          index_files, read_package_descriptions)
from fmkeras.data.source import Source
from fmkeras.data.text_source import make_text_source
from fmkeras.errors import DataError

SNAPSHOT_RESOURCE = "corpora/debian_packages.jsonl.gz"
SNAPSHOT_SHA256 = "c650a5ff03dae26eeae586f99096e8daf5b3e21ded80d1961ade91fc4ccc78ee"
SNAPSHOT_SUFFIX = ".jsonl.gz"
MANIFEST_SUFFIX = ".manifest.json"
FIELDS = ("package", "section", "text")
DEFAULT_SEED = 1337


def manifest_path(snapshot_path: str) -> str:
    """`X.jsonl.gz` -> `X.manifest.json`."""
    if not str(snapshot_path).endswith(SNAPSHOT_SUFFIX):
        raise ValueError(f"a snapshot file name must end with {SNAPSHOT_SUFFIX!r}. Received: {snapshot_path!r}")
    return str(snapshot_path)[: -len(SNAPSHOT_SUFFIX)] + MANIFEST_SUFFIX


def snapshot_bytes(rows) -> bytes:
    """Gzip (mtime 0, no file name) of one sorted-key JSON line per (package, text, section) row, in order."""
    lines = "".join(json.dumps({"package": p, "section": s, "text": t}, ensure_ascii=False, sort_keys=True) + "\n"
                    for p, t, s in rows)
    buffer = io.BytesIO()
    # GzipFile with filename="" and mtime=0: the header holds no name or time, so equal rows give equal bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as fh:
        fh.write(lines.encode("utf-8"))
    return buffer.getvalue()


def _write_file(path: str, data: bytes):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256_file(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _release_dates(lists_dir: str) -> list:
    """The `Date:` of each (In)Release file: when the archive published the indexes."""
    releases = []
    for name in sorted(os.listdir(lists_dir)):
        if name.endswith(("_InRelease", "_Release")):
            with open(os.path.join(lists_dir, name), encoding="utf-8", errors="replace") as fh:
                date = next((line[5:].strip() for line in fh if line.startswith("Date:")), None)
            releases.append({"file": name, "date": date})
    return releases


def split_summary(rows, seed: int = DEFAULT_SEED, test_fraction: float = TEST_FRACTION) -> dict:
    """Counts, first texts and a hash of the test texts of the split `seed` makes: the manifest pins it."""
    splits = fixed_seed_splits(len(rows), seed, test_fraction)
    test = [r[1] for r, s in zip(rows, splits) if s == "test"]
    train = [r[1] for r, s in zip(rows, splits) if s == "train"]
    return {"seed": seed, "test_fraction": test_fraction, "train": len(train), "test": len(test),
            "first_train_text": train[0], "first_test_text": test[0],
            "test_texts_sha256": hashlib.sha256("\n".join(test).encode("utf-8")).hexdigest()}


def write_snapshot(out: str, lists_dir: str = APT_LISTS_DIR, sections=DEFAULT_SECTIONS) -> dict:
    """Writes the snapshot of `lists_dir`'s descriptions to `out` and its manifest beside it; returns the
    manifest."""
    rows = read_package_descriptions(lists_dir, sections)
    data = snapshot_bytes(rows)
    counts = {}
    for _, _, section in rows:
        counts[section] = counts.get(section, 0) + 1
    manifest = {
        "file": os.path.basename(out), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
        # Another zlib may compress the same lines to other bytes; this hash of the lines themselves tells
        # whether a regenerated snapshot differs in content or only in compression.
        "jsonl_sha256": hashlib.sha256(gzip.decompress(data)).hexdigest(),
        "fields": list(FIELDS), "records": len(rows), "records_per_section": dict(sorted(counts.items())),
        "sections": list(sections),
        "built_by": f"python -m fmkeras.data.debian_snapshot {os.path.basename(out)}",
        "apt_lists": [{"file": os.path.basename(p), "sha256": _sha256_file(p), "modified": _utc(os.path.getmtime(p))}
                      for p in index_files(lists_dir)],
        "releases": _release_dates(lists_dir),
        "default_split": split_summary(rows),
    }
    _write_file(out, data)
    _write_file(manifest_path(out), (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return manifest


def _snapshot_file(path):
    """(bytes, name for messages) of `path`, or of the snapshot shipped with fmkeras when `path` is None."""
    if path is None:
        resource = importlib_resources.files("fmkeras.data").joinpath(SNAPSHOT_RESOURCE)
        if not resource.is_file():
            raise DataError(f"the Debian descriptions snapshot {resource} is missing from this fmkeras install; "
                            "reinstall fmkeras, or use data.source=text:debian_apt to read this machine's apt lists")
        return resource.read_bytes(), str(resource)
    if not os.path.isfile(path):
        raise DataError(f"Debian descriptions snapshot not found: {path}")
    with open(path, "rb") as fh:
        return fh.read(), str(path)


def read_snapshot(path: str = None, sha256: str = SNAPSHOT_SHA256) -> list:
    """[(package, description, section)] from a snapshot whose sha256 must equal `sha256`.

    Args:
        path: str. The snapshot file. Defaults to None, the snapshot shipped with fmkeras.
        sha256: str. The expected hex digest. Defaults to SNAPSHOT_SHA256, the shipped snapshot's.
    """
    data, name = _snapshot_file(path)
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise DataError(f"{name} has sha256 {actual}, expected {sha256}: the Debian descriptions snapshot was "
                        "changed or damaged, so its texts are not the ones fmkeras' figures were measured on. "
                        "Reinstall fmkeras (or `git checkout` the file), or use data.source=text:debian_apt to "
                        "read this machine's apt lists instead")
    rows = []
    for line_number, line in enumerate(gzip.decompress(data).decode("utf-8").splitlines(), start=1):
        record = json.loads(line)
        if sorted(record) != sorted(FIELDS):
            raise DataError(f"{name} line {line_number}: keys must be {', '.join(FIELDS)}. Received: "
                            f"{', '.join(sorted(record))}")
        rows.append((record["package"], record["text"], record["section"]))
    return rows


def debian_snapshot_source(seed: int = DEFAULT_SEED, test_fraction: float = TEST_FRACTION, path: str = None,
                           sha256: str = SNAPSHOT_SHA256) -> Source:
    """`text:debian`: the snapshot's descriptions (text) and sections (labels), with the fixed-seed test split
    of `test_fraction` that text:debian_apt makes from the same rows."""
    rows = read_snapshot(path, sha256)
    return make_text_source("text:debian", [r[1] for r in rows], [r[2] for r in rows],
                            fixed_seed_splits(len(rows), seed, test_fraction))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Writes the Debian package descriptions snapshot (and its "
                                     "manifest) from the apt lists.")
    parser.add_argument("out", help=f"snapshot file, ending in {SNAPSHOT_SUFFIX}")
    parser.add_argument("--lists_dir", default=APT_LISTS_DIR)
    args = parser.parse_args(argv)
    manifest = write_snapshot(args.out, args.lists_dir)
    print(json.dumps({k: manifest[k] for k in ("file", "sha256", "bytes", "records", "records_per_section")},
                     indent=2))
    print(f"wrote {args.out} and {manifest_path(args.out)}; the sha256 to pin is {manifest['sha256']}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
