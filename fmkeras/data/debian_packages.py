"""A real labeled text set that works offline: Debian package descriptions labelled by section.

Every Debian/Ubuntu machine that has run `apt-get update` holds the archive's package index in
/var/lib/apt/lists/*_Packages(.lz4|.gz|.xz). Each package has a one-line description written by
its maintainer and a section chosen by the archive (games, net, science, ...): tens of thousands
of human-written, human-labelled short texts. The text is the description only (package names
would leak the label, e.g. `python3-*`); identical descriptions are kept once, and dropped when
they appear under two sections.

`data.source=text:debian_apt` reads this machine's lists; `text:debian` reads the committed snapshot
of them (fmkeras.data.debian_snapshot), the same on every machine. Run
`python -m fmkeras.data.debian_packages data/debian_packages.csv` (or `make text-data`) to write this
machine's set as the CSV (`text,label,package,split`) that `data.source=text:data/debian_packages.csv` reads.
"""
from __future__ import annotations

import csv
import glob
import gzip
import lzma
import os
import subprocess
import sys

import numpy as np

from fmkeras.data.source import Source
from fmkeras.data.text_source import make_text_source
from fmkeras.errors import DataError

APT_LISTS_DIR = "/var/lib/apt/lists"
APT_HELPER = "/usr/lib/apt/apt-helper"
# Well-populated sections whose descriptions say what a program does (not "library"/"dev files").
DEFAULT_SECTIONS = ("admin", "games", "graphics", "net", "science", "sound", "text", "web")
TEST_FRACTION = 0.2


def _read_index(path: str) -> str:
    if path.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    if path.endswith(".xz"):
        with lzma.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    if path.endswith(".lz4"):
        if not os.path.exists(APT_HELPER):
            raise DataError(f"{path} is lz4-compressed and {APT_HELPER} (package apt) is missing")
        return subprocess.run([APT_HELPER, "cat-file", path], check=True, capture_output=True,
                              timeout=300).stdout.decode("utf-8", errors="replace")
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def index_files(lists_dir: str = APT_LISTS_DIR) -> list:
    """The binary package indexes under `lists_dir` (one per suite/component/arch)."""
    return sorted(p for p in glob.glob(os.path.join(lists_dir, "*_Packages*")) if not p.endswith(".diff_Index"))


def parse_packages(text: str) -> dict:
    """Package name -> (section, one-line description) from a Packages index."""
    packages = {}
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" in fields and "Section" in fields and fields.get("Description"):
            section = fields["Section"].rsplit("/", 1)[-1]  # contrib/net -> net
            packages[fields["Package"]] = (section, fields["Description"])
    return packages


def read_package_descriptions(lists_dir: str = APT_LISTS_DIR, sections=DEFAULT_SECTIONS) -> list:
    """[(package, description, section)] for `sections`, one row per distinct description."""
    files = index_files(lists_dir)
    if not files:
        raise DataError(f"no package indexes (*_Packages*) in {lists_dir}: run `apt-get update` first")
    packages = {}
    for path in files:
        packages.update(parse_packages(_read_index(path)))
    by_text = {}
    for name in sorted(packages):
        section, description = packages[name]
        if section in sections:
            by_text.setdefault(description.lower(), []).append((name, description, section))
    rows = [group[0] for group in by_text.values() if len({s for _, _, s in group}) == 1]
    if not rows:
        raise DataError(f"{lists_dir}: no packages in sections {', '.join(sections)}")
    return sorted(rows)


def all_descriptions(lists_dir: str = APT_LISTS_DIR, exclude=()) -> list:
    """Every distinct description in the apt lists (all sections), minus `exclude`: unlabeled text
    for self-supervised pretraining (pass the labeled test texts as `exclude`)."""
    files = index_files(lists_dir)
    if not files:
        raise DataError(f"no package indexes (*_Packages*) in {lists_dir}: run `apt-get update` first")
    excluded = {t.lower() for t in exclude}
    texts = {}
    for path in files:
        for _, description in parse_packages(_read_index(path)).values():
            if description.lower() not in excluded:
                texts.setdefault(description.lower(), description)
    return sorted(texts.values())


def fixed_seed_splits(count: int, seed: int, test_fraction: float = TEST_FRACTION) -> list:
    """"train" or "test" for each of `count` rows: a seeded permutation puts round(count * test_fraction) of
    them in the test split, so the same rows in the same order give the same split on any machine."""
    order = np.random.default_rng(seed).permutation(count)
    splits = ["train"] * count
    for i in order[: int(round(count * test_fraction))]:
        splits[i] = "test"
    return splits


def debian_packages_source(lists_dir: str = APT_LISTS_DIR, sections=DEFAULT_SECTIONS, seed: int = 1337,
                           test_fraction: float = TEST_FRACTION) -> Source:
    """`text:debian_apt`: this machine's descriptions (text) and sections (labels), with a fixed-seed test
    split of `test_fraction` (`text:debian` reads the same kind of rows from the committed snapshot)."""
    rows = read_package_descriptions(lists_dir, sections)
    return make_text_source("text:debian_apt", [r[1] for r in rows], [r[2] for r in rows],
                            fixed_seed_splits(len(rows), seed, test_fraction))


def write_debian_packages_csv(path: str, lists_dir: str = APT_LISTS_DIR, sections=DEFAULT_SECTIONS,
                              seed: int = 1337, test_fraction: float = TEST_FRACTION) -> dict:
    """Writes `text,label,package,split` rows; returns counts per section and split."""
    rows = read_package_descriptions(lists_dir, sections)
    splits = fixed_seed_splits(len(rows), seed, test_fraction)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    counts = {}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label", "package", "split"])
        for (name, description, section), split in zip(rows, splits):
            writer.writerow([description, section, name, split])
            counts.setdefault(section, {"train": 0, "test": 0})[split] += 1
    return counts


if __name__ == "__main__":
    import json
    out = sys.argv[1] if len(sys.argv) > 1 else "data/debian_packages.csv"
    print(json.dumps({"path": out, "counts": write_debian_packages_csv(out)}, indent=2))
