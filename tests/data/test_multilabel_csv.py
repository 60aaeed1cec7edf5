"""fmkeras/data/multilabel_csv.py: the `multilabel:FILE.csv` reader (multi-hot labels, splits, errors naming
the file, line and value) and the pipeline carrying (N, K) labels through unchanged."""
import os

import numpy as np
import pytest
from PIL import Image

from fmkeras.config import AugmentConfig, DataConfig
from fmkeras.data import build_datasets, load_source
from fmkeras.data.multilabel_csv import multilabel_csv_source
from fmkeras.errors import DataError


def _write(tmp_path, rows, header="path,labels,split", images=6, size=(12, 10)) -> str:
    """A CSV of `rows` beside `images` tiny grayscale PNGs img0.png.. (each a distinct constant)."""
    for i in range(images):
        Image.fromarray(np.full(size, 10 * i, np.uint8)).save(tmp_path / f"img{i}.png")
    path = tmp_path / "labels.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


GOOD = ["img0.png,cat;dog,train", "img1.png,dog,train", "img2.png, bird ;cat ,val", "img3.png,cat,",
        "img4.png,dog;bird,test", "img5.png,bird,train"]


def test_reads_paths_multi_hot_labels_and_splits(tmp_path):
    source = load_source(DataConfig(source=f"multilabel:{_write(tmp_path, GOOD)}"))
    assert source.class_names == ("bird", "cat", "dog")  # the sorted union of the labels
    assert source.y_train.dtype == np.float32 and source.y_train.shape == (4, 3)
    np.testing.assert_array_equal(source.y_train, [[0, 1, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0]])  # empty split = train
    np.testing.assert_array_equal(source.y_val, [[1, 1, 0]])
    np.testing.assert_array_equal(source.y_test, [[1, 0, 1]])
    assert [os.path.basename(p) for p in source.x_train] == ["img0.png", "img1.png", "img3.png", "img5.png"]
    assert source.image_shape == (12, 10, 3)  # one size in every header; channels from data.channels (3)


def test_classes_keep_those_label_columns_in_order(tmp_path):
    source = multilabel_csv_source(_write(tmp_path, GOOD), DataConfig(classes=("dog", "bird")))
    assert source.class_names == ("dog", "bird")
    np.testing.assert_array_equal(source.y_train, [[1, 0], [1, 0], [0, 0], [0, 1]])
    with pytest.raises(DataError, match="'fish'"):
        multilabel_csv_source(_write(tmp_path, GOOD), DataConfig(classes=("fish",)))


@pytest.mark.parametrize("row, message", [
    ("missing.png,cat,train", r"labels.csv, line 3: image file not found: 'missing.png'"),
    ("img1.png,,train", r"labels.csv, line 3: empty labels for 'img1.png'.*Received: labels=''"),
    ("img1.png, ; ,train", r"labels.csv, line 3: empty labels"),
    ("img1.png,cat,validation", r"labels.csv, line 3: unknown split 'validation' for 'img1.png'; use one of "
                                r"train, val, test"),
])
def test_bad_rows_name_the_file_line_and_value(tmp_path, row, message):
    with pytest.raises(DataError, match=message):
        multilabel_csv_source(_write(tmp_path, ["img0.png,cat,train", row]))


def test_bad_header_and_missing_file_are_named(tmp_path):
    with pytest.raises(DataError, match=r"labels.csv: the header must name the columns path and labels.*missing "
                                        r"labels"):
        multilabel_csv_source(_write(tmp_path, ["img0.png,cat"], header="path,tags"))
    with pytest.raises(DataError, match="multi-label CSV not found: .*nothere.csv"):
        multilabel_csv_source(str(tmp_path / "nothere.csv"))


def test_pipeline_carries_multi_hot_labels_through_unchanged(tmp_path):
    rows = [f"img{i}.png,{'a;b' if i % 3 == 0 else 'b' if i % 3 == 1 else 'c'},train" for i in range(6)]
    cfg = DataConfig(source=f"multilabel:{_write(tmp_path, rows)}", validation_split=0.34, channels=1,
                     augment=AugmentConfig(horizontal_flip=True))
    source = load_source(cfg)
    data = build_datasets(source, cfg, batch_size=2)
    assert (data.num_train, data.num_val, data.image_shape) == (4, 2, (12, 10, 1))
    by_pixel = {int(10 * i): source.y_train[i] for i in range(6)}  # image i is the constant 10 * i
    for ds in (data.train, data.val, data.train):  # twice over the cached, reshuffled training set
        for images, labels in ds:
            assert labels.dtype == "float32" and labels.shape[1] == 3
            for image, label in zip(images.numpy(), labels.numpy()):
                np.testing.assert_array_equal(label, by_pixel[int(round(image.mean()))])
    limited = build_datasets(source, DataConfig(**{**cfg.__dict__, "limit_train": 2}), batch_size=2)
    assert limited.num_train == 2 and next(iter(limited.train))[1].shape == (2, 3)
    batch = next(iter(data.train_batches(0, 1)))  # the step-indexed stream of resumable training
    assert batch[1].shape == (2, 3)


@pytest.mark.parametrize("field, value", [("labels_per_class", 1), ("balance", "sample"), ("label_noise", 0.2),
                                          ("augment", AugmentConfig(mixup=0.2)),
                                          ("augment", AugmentConfig(cutmix=1.0))])
def test_pipeline_refuses_single_label_settings_by_name(tmp_path, field, value):
    cfg = DataConfig(source=f"multilabel:{_write(tmp_path, GOOD)}", **{field: value})
    name = f"data.{field}" if field != "augment" else f"data.augment.{'mixup' if value.mixup else 'cutmix'}"
    with pytest.raises(DataError, match=f"`{name}` assumes one class per example"):
        build_datasets(load_source(cfg), cfg, batch_size=2)
