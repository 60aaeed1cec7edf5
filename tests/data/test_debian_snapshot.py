"""fmkeras/data/debian_snapshot.py: the committed Debian descriptions snapshot behind `text:debian`."""
import configparser
import fnmatch
import gzip
import hashlib
import json
import os
import re
import shutil

import importlib_resources
import pytest

from fmkeras.config import DataConfig, TextConfig
from fmkeras.data import debian_packages
from fmkeras.data.debian_snapshot import (SNAPSHOT_RESOURCE, SNAPSHOT_SHA256, debian_snapshot_source, manifest_path,
                                          read_snapshot, write_snapshot)
from fmkeras.data.text import load_text_source
from fmkeras.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SNAPSHOT = importlib_resources.files("fmkeras.data").joinpath(SNAPSHOT_RESOURCE)
STANZA = "Package: {name}\nSection: {section}\nDescription: {text}\n long description, ignored\n\n"
FAKE_PACKAGES = [("zsh-fun", "games", "a shell game"), ("abc-net", "net", "fetch files över the network"),
                 ("mid-sci", "science", "plot \"quoted\" data"), ("libx", "libs", "a library"),
                 ("vim-like", "text", "text editor"), ("nmap-ish", "net", "port scanner"),
                 ("solver", "science", "equation solver"), ("tetris-ish", "games", "falling blocks")]


def _manifest() -> dict:
    return json.loads(importlib_resources.files("fmkeras.data").joinpath(
        manifest_path(SNAPSHOT_RESOURCE)).read_text(encoding="utf-8"))


def _fake_apt_lists(root):
    """A lists directory like /var/lib/apt/lists: a plain and a gzip index, and an InRelease with a Date."""
    root.mkdir()
    half = len(FAKE_PACKAGES) // 2
    (root / "example_dists_stable_main_binary-amd64_Packages").write_text(
        "".join(STANZA.format(name=n, section=s, text=t) for n, s, t in FAKE_PACKAGES[:half]), encoding="utf-8")
    with gzip.open(root / "example_dists_stable_contrib_binary-amd64_Packages.gz", "wt", encoding="utf-8") as fh:
        fh.write("".join(STANZA.format(name=n, section=f"contrib/{s}", text=t) for n, s, t in FAKE_PACKAGES[half:]))
    (root / "example_dists_stable_InRelease").write_text("Origin: Example\nDate: Sat, 05 Dec 2026 03:33:28 UTC\n")
    return root


def test_shipped_snapshot_matches_its_pinned_sha256_and_manifest():
    data = SNAPSHOT.read_bytes()
    manifest = _manifest()
    assert hashlib.sha256(data).hexdigest() == SNAPSHOT_SHA256 == manifest["sha256"]
    assert len(data) == manifest["bytes"] < 1_000_000
    rows = read_snapshot()
    assert len(rows) == manifest["records"] == sum(manifest["records_per_section"].values())
    assert rows == sorted(rows) and len({r[1].lower() for r in rows}) == len(rows)  # sorted, one row per text
    assert {r[2] for r in rows} == set(manifest["records_per_section"]) == set(debian_packages.DEFAULT_SECTIONS)
    assert all(entry["file"].split("_")[-1].startswith("Packages") for entry in manifest["apt_lists"])


def test_tampered_copy_is_refused_naming_the_file_and_both_hashes(tmp_path):
    copy = tmp_path / "debian_packages.jsonl.gz"
    shutil.copyfile(SNAPSHOT, copy)
    lines = gzip.decompress(copy.read_bytes()).decode("utf-8").splitlines(keepends=True)
    record = json.loads(lines[0])
    record["section"] = "web" if record["section"] != "web" else "net"  # one relabelled text
    lines[0] = json.dumps(record, sort_keys=True) + "\n"
    copy.write_bytes(gzip.compress("".join(lines).encode("utf-8"), mtime=0))
    actual = hashlib.sha256(copy.read_bytes()).hexdigest()
    name = re.escape(str(copy))
    with pytest.raises(DataError, match=rf"{name} has sha256 {actual}, expected {SNAPSHOT_SHA256}.*text:debian_apt"):
        debian_snapshot_source(path=str(copy))
    copy.write_bytes(SNAPSHOT.read_bytes()[:-10])  # truncated
    with pytest.raises(DataError, match=rf"{name} has sha256 [0-9a-f]{{64}}, expected {SNAPSHOT_SHA256}"):
        read_snapshot(str(copy))


def test_text_debian_reads_the_snapshot_never_the_apt_lists(monkeypatch):
    def no_apt(*args, **kwargs):
        raise AssertionError("text:debian read the apt lists")
    monkeypatch.setattr(debian_packages, "read_package_descriptions", no_apt)
    monkeypatch.setattr(debian_packages, "index_files", no_apt)
    first = load_text_source(DataConfig(source="text:debian"), TextConfig())
    second = load_text_source(DataConfig(source="text:debian"), TextConfig())
    assert first.name == "text:debian" and first.class_names == tuple(debian_packages.DEFAULT_SECTIONS)
    assert (len(first.x_train), len(first.x_test)) == (len(second.x_train), len(second.x_test))
    assert list(first.x_train[:5]) == list(second.x_train[:5]) and list(first.x_test[:5]) == list(second.x_test[:5])
    assert list(first.y_test) == list(second.y_test)
    # The split the manifest pinned when the snapshot was written is the one every machine gets.
    split = _manifest()["default_split"]
    assert split["seed"] == DataConfig().seed
    assert (len(first.x_train), len(first.x_test)) == (split["train"], split["test"])
    assert (first.x_train[0], first.x_test[0]) == (split["first_train_text"], split["first_test_text"])
    assert hashlib.sha256("\n".join(first.x_test).encode("utf-8")).hexdigest() == split["test_texts_sha256"]
    other = load_text_source(DataConfig(source="text:debian", seed=7), TextConfig())
    assert len(other.x_test) == split["test"] and list(other.x_test[:5]) != list(first.x_test[:5])


def test_regenerating_from_the_same_apt_lists_is_byte_identical(tmp_path):
    lists = _fake_apt_lists(tmp_path / "lists")
    first = write_snapshot(str(tmp_path / "a" / "corpus.jsonl.gz"), str(lists))
    second = write_snapshot(str(tmp_path / "b" / "corpus.jsonl.gz"), str(lists))
    for name in ("corpus.jsonl.gz", "corpus.manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first == second and first["records"] == 7  # the `libs` package is not in the 8 sections
    assert first["records_per_section"] == {"games": 2, "net": 2, "science": 2, "text": 1}
    assert [e["file"] for e in first["apt_lists"]] == ["example_dists_stable_contrib_binary-amd64_Packages.gz",
                                                        "example_dists_stable_main_binary-amd64_Packages"]
    assert first["releases"] == [{"file": "example_dists_stable_InRelease", "date": "Sat, 05 Dec 2026 03:33:28 UTC"}]
    rows = read_snapshot(str(tmp_path / "a" / "corpus.jsonl.gz"), sha256=first["sha256"])
    assert rows == debian_packages.read_package_descriptions(str(lists))
    assert ("abc-net", "fetch files över the network", "net") in rows
    source = debian_snapshot_source(path=str(tmp_path / "a" / "corpus.jsonl.gz"), sha256=first["sha256"])
    assert len(source.x_test) == first["default_split"]["test"] == 1


def test_snapshot_needs_the_jsonl_gz_suffix_and_is_shipped_as_package_data(tmp_path):
    with pytest.raises(ValueError, match=r"must end with '.jsonl.gz'. Received: .*corpus.csv"):
        write_snapshot(str(tmp_path / "corpus.csv"), str(_fake_apt_lists(tmp_path / "lists")))
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO, "setup.cfg"))
    globs = [g.strip() for g in setup["options.package_data"]["fmkeras.data"].split(",")]
    for resource in (SNAPSHOT_RESOURCE, manifest_path(SNAPSHOT_RESOURCE)):
        assert any(fnmatch.fnmatch(resource, g) for g in globs), resource
