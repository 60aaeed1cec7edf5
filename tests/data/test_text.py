"""fmkeras/data/text.py, text_pipeline.py, debian_packages.py: text sources, splits and errors
(the `text:debian` snapshot: test_debian_snapshot.py)."""
import dataclasses
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from fmkeras.config import AugmentConfig, DataConfig, TextConfig
from fmkeras.data.debian_packages import parse_packages, read_package_descriptions, write_debian_packages_csv
from fmkeras.data.text import load_text_source
from fmkeras.data.text_pipeline import build_text_datasets
from fmkeras.errors import ConfigError, DataError

PACKAGES = """Package: chess-engine
Section: games
Description: strong chess engine with opening book
Priority: optional

Package: netcat-plus
Section: net
Description: TCP/IP swiss army knife
 long descriptions are indented and ignored

Package: curl-like
Section: contrib/net
Description: command line tool for transferring data with URL syntax

Package: twin-a
Section: games
Description: duplicate text

Package: twin-b
Section: net
Description: duplicate text

Package: libfoo1
Section: libs
Description: foo library
"""


def _load(source, **text):
    return load_text_source(DataConfig(source=source), TextConfig(**text))


def test_csv_with_split_column_and_tsv(tmp_path):
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text('review,stars,split\n"good, really good",pos,train\nbad,neg,train\nfine,pos,test\n')
    source = _load(f"text:{csv_path}", text_column="review", label_column="stars")
    assert source.kind == "text" and source.class_names == ("neg", "pos")
    assert list(source.x_train) == ["good, really good", "bad"] and list(source.y_train) == [1, 0]
    assert list(source.x_test) == ["fine"] and list(source.y_test) == [1]
    tsv_path = tmp_path / "t.tsv"
    tsv_path.write_text("text\tlabel\na, b\tx\nc\ty\n")
    tsv = _load(f"text:{tsv_path}")
    assert list(tsv.x_train) == ["a, b", "c"] and tsv.x_test is None


def test_csv_errors_name_the_column_and_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("body,label\nx,a\n")
    with pytest.raises(DataError, match="no column 'text'.*columns: body, label"):
        _load(f"text:{path}")
    path.write_text("text,label,split\nx,a,dev\n")
    with pytest.raises(DataError, match="line 2: column 'split' must be train or test. Received: 'dev'"):
        _load(f"text:{path}")
    with pytest.raises(DataError, match="not a .csv/.tsv file"):
        _load(f"text:{tmp_path / 'missing.json'}")


def test_folder_of_txt_per_class_with_and_without_splits(tmp_path):
    for split in ("train", "test"):
        for label, words in (("ham", "see you at lunch"), ("spam", "win money now")):
            folder = tmp_path / "split" / split / label
            folder.mkdir(parents=True)
            for i in range(3 if split == "train" else 1):
                (folder / f"{i}.txt").write_text(f"{words} {i}")
    source = _load(f"text:{tmp_path / 'split'}")
    assert source.class_names == ("ham", "spam") and len(source.x_train) == 6 and len(source.x_test) == 2
    flat = _load(f"text:{tmp_path / 'split' / 'train'}")
    assert len(flat.x_train) == 6 and flat.x_test is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .txt files"):
        _load(f"text:{tmp_path / 'empty'}")


def test_tfds_text_dataset_with_mock_data(monkeypatch):
    monkeypatch.setattr("fmkeras.data.tfds_source._network_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=10):
        source = _load("text:tfds:imdb_reviews")
    assert source.name == "text:tfds:imdb_reviews" and source.class_names == ("neg", "pos")
    assert len(source.x_train) == 10 and len(source.x_test) == 10 and isinstance(source.x_train[0], str)


def test_tfds_text_offline_error_is_actionable(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("fmkeras.data.tfds_source._network_reachable", lambda *a, **k: False)
    with pytest.raises(DataError, match=r"'imdb_reviews' is not prepared in .* cannot be reached.*tfds build"):
        _load("text:tfds:imdb_reviews")


def test_debian_parser_drops_ambiguous_duplicates(tmp_path):
    assert parse_packages(PACKAGES)["curl-like"] == ("net", "command line tool for transferring data with URL syntax")
    (tmp_path / "deb_dists_main_binary-amd64_Packages").write_text(PACKAGES)
    rows = read_package_descriptions(str(tmp_path), sections=("games", "net"))
    assert [r[0] for r in rows] == ["chess-engine", "curl-like", "netcat-plus"]  # twins disagree: dropped
    counts = write_debian_packages_csv(str(tmp_path / "out" / "d.csv"), str(tmp_path), sections=("games", "net"),
                                       test_fraction=0.34)
    assert sum(c["test"] for c in counts.values()) == 1 and sum(c["train"] for c in counts.values()) == 2
    source = _load(f"text:{tmp_path / 'out' / 'd.csv'}")
    assert source.class_names == ("games", "net") and len(source.x_train) + len(source.x_test) == 3
    with pytest.raises(DataError, match="run `apt-get update`"):
        read_package_descriptions(str(tmp_path / "out"))


@pytest.mark.skipif(not any(f.endswith(("Packages", "Packages.lz4", "Packages.gz", "Packages.xz"))
                            for f in (os.listdir("/var/lib/apt/lists") if os.path.isdir("/var/lib/apt/lists")
                                      else [])), reason="no apt lists on this machine")
def test_real_debian_descriptions_from_apt_lists():
    source = _load("text:debian_apt")
    assert source.name == "text:debian_apt"
    assert set(source.class_names) == {"admin", "games", "graphics", "net", "science", "sound", "text", "web"}
    assert len(source.x_train) > 3000 and len(source.x_test) > 800
    assert not set(source.x_train) & set(source.x_test)


def test_text_pipeline_splits_batches_and_rejects_augment(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(40)))
    cfg = DataConfig(source=f"text:{path}", validation_split=0.25)
    data = build_text_datasets(load_text_source(cfg, TextConfig()), cfg, batch_size=8)
    assert (data.num_train, data.num_val, data.num_test, data.image_shape) == (30, 10, 0, None)
    texts, labels = next(iter(data.train))
    assert texts.dtype.name == "string" and labels.shape == (8,)
    val_texts = {t.numpy().decode() for t, _ in data.val.unbatch()}
    assert len(data.train_texts) == 30 and not set(data.train_texts) & val_texts
    assert set(np.unique(labels.numpy())) <= {0, 1}
    with pytest.raises(ConfigError, match="augment"):
        build_text_datasets(load_text_source(cfg, TextConfig()), dataclasses.replace(
            cfg, augment=AugmentConfig(horizontal_flip=True)), 8)
