"""Labeled text as a data source: CSV/TSV files, folders of .txt files, TFDS text datasets, Debian.

`data.source` forms (the `text:` prefix selects the text task):
- `text:FILE.csv` / `text:FILE.tsv`: columns `text.text_column` and `text.label_column` (header row);
  an optional `split` column with `train`/`test` values sets the test split.
- `text:DIR`: one sub-folder of .txt files per class, or `DIR/train/<class>` + `DIR/test/<class>`.
- `text:tfds:NAME`: a TensorFlow Datasets text dataset (e.g. `imdb_reviews`, `ag_news_subset`).
- `text:debian`: Debian package descriptions labelled by section, from the snapshot shipped with fmkeras
  (checked against its sha256; see fmkeras.data.debian_snapshot), so every machine gets the same texts.
- `text:debian_apt`: the same set read from this machine's apt lists (see fmkeras.data.debian_packages).

Example:
    source = load_text_source(DataConfig(source="text:reviews.csv"), TextConfig(text_column="review"))
"""
from __future__ import annotations

import csv
import os

from fmkeras.config import TEXT_SOURCE_PREFIX, DataConfig, TextConfig
from fmkeras.data.source import Source, select_classes
from fmkeras.data.text_source import make_text_source
from fmkeras.errors import DataError

TEXT_PREFIX = TEXT_SOURCE_PREFIX
SPLIT_COLUMN = "split"


def is_text_source(spec: str) -> bool:
    """True for `data.source` values that select the text task."""
    return spec.startswith(TEXT_PREFIX)


def csv_text_source(path: str, text_column: str = "text", label_column: str = "label") -> Source:
    """Reads a CSV (or TSV, by extension) with a header row naming the text and label columns."""
    if not os.path.isfile(path):
        raise DataError(f"text file not found: {path}")
    delimiter = "\t" if path.endswith((".tsv", ".tab")) else ","
    texts, labels, splits = [], [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        missing = [c for c in (text_column, label_column) if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path} has no column {missing[0]!r} (set text.text_column / text.label_column); "
                            f"columns: {', '.join(reader.fieldnames or [])}")
        for line, row in enumerate(reader, start=2):
            split = (row.get(SPLIT_COLUMN) or "train").strip().lower()
            if split not in ("train", "test"):
                raise DataError(f"{path} line {line}: column {SPLIT_COLUMN!r} must be train or test. "
                                f"Received: {split!r}")
            texts.append(row[text_column] or "")
            labels.append(str(row[label_column]))
            splits.append(split)
    return make_text_source(f"text:{path}", texts, labels, splits)


def _read_class_folders(root: str, split: str, texts, labels, splits):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    for label in classes:
        folder = os.path.join(root, label)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".txt"):
                with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as fh:
                    texts.append(fh.read())
                labels.append(label)
                splits.append(split)


def text_folder_source(root: str) -> Source:
    """Reads `root/<class>/*.txt`, or `root/train/<class>/*.txt` + `root/test/<class>/*.txt`."""
    if not os.path.isdir(root):
        raise DataError(f"text folder not found: {root}")
    texts, labels, splits = [], [], []
    if os.path.isdir(os.path.join(root, "train")):
        _read_class_folders(os.path.join(root, "train"), "train", texts, labels, splits)
        if os.path.isdir(os.path.join(root, "test")):
            _read_class_folders(os.path.join(root, "test"), "test", texts, labels, splits)
    else:
        _read_class_folders(root, "train", texts, labels, splits)
    if not texts:
        raise DataError(f"{root}: no .txt files in class sub-folders (expected {root}/<class>/*.txt)")
    return make_text_source(f"text:{root}", texts, labels, splits)


def _decode(values) -> list:
    return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in values]


def tfds_text_source(name: str, data_dir: str = None, limit_train: int = None, limit_test: int = None,
                     download: bool = True, text_column: str = "text", label_column: str = "label") -> Source:
    """Loads a TFDS text dataset's train and test splits (its supervised keys, else the text columns)."""
    import tensorflow_datasets as tfds
    from fmkeras.data.tfds_source import prepared_builder
    builder, data_dir = prepared_builder(name, data_dir, download)
    info = builder.info
    text_key, label_key = info.supervised_keys or (text_column, label_column)
    if text_key not in info.features or label_key not in info.features:
        raise DataError(f"TFDS dataset {name!r} has no {text_key!r}+{label_key!r} features; it has: "
                        f"{', '.join(info.features.keys())} (set text.text_column / text.label_column)")
    label = info.features[label_key]
    names = tuple(label.names) if hasattr(label, "names") else None
    texts, labels, splits = [], [], []
    for split, limit in (("train", limit_train), ("test", limit_test)):
        if info.splits and split not in info.splits:
            continue
        ds = builder.as_dataset(split=split)
        for example in tfds.as_numpy(ds.take(limit) if limit else ds):
            texts.append(_decode([example[text_key]])[0])
            labels.append(names[int(example[label_key])] if names else str(int(example[label_key])))
            splits.append(split)
    return make_text_source(f"text:tfds:{name}", texts, labels, splits)


def load_text_source(data: DataConfig, text: TextConfig) -> Source:
    """Loads the texts named by `data.source` (a `text:` spec), keeping `data.classes` if given."""
    if not is_text_source(data.source):
        raise DataError(f"{data.source!r} is not a text source; text sources start with {TEXT_PREFIX!r}")
    spec = data.source[len(TEXT_PREFIX):]
    if not spec:
        raise DataError("data source 'text:' needs a file, folder, tfds:NAME, debian or debian_apt after 'text:'")
    if spec == "debian":
        from fmkeras.data.debian_snapshot import debian_snapshot_source
        source = debian_snapshot_source(seed=data.seed)
    elif spec == "debian_apt":
        from fmkeras.data.debian_packages import debian_packages_source
        source = debian_packages_source(seed=data.seed)
    elif spec.startswith("tfds:"):
        source = tfds_text_source(spec[len("tfds:"):], limit_train=data.limit_train, limit_test=data.limit_test,
                                  download=data.download, text_column=text.text_column,
                                  label_column=text.label_column)
    elif os.path.isdir(spec):
        source = text_folder_source(spec)
    elif spec.endswith((".csv", ".tsv", ".tab")):
        source = csv_text_source(spec, text.text_column, text.label_column)
    else:
        raise DataError(f"text source {spec!r} is not a .csv/.tsv file, a folder, tfds:NAME, debian or debian_apt")
    return select_classes(source, data.classes)
