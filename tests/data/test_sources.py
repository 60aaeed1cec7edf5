"""fmkeras/data/sources.py and the array, folder and TFDS sources."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from fmkeras.config import DataConfig
from fmkeras.data.arrays import array_source
from fmkeras.data.sources import load_source
from fmkeras.errors import DataError


def write_png_folder(root, classes=("cat", "dog"), per_class=3, size=(12, 10), channels=3):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (*size, channels), dtype=np.uint8)
            (root / name / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return root


def test_npz_source_keeps_class_names(fashion_npz):
    source = load_source(DataConfig(source=f"npz:{fashion_npz}"))
    assert source.x_train.shape == (600, 28, 28, 1) and source.x_test.shape == (200, 28, 28, 1)
    assert source.class_names[0] == "T-shirt/top"


def test_array_source_scales_unit_floats():
    source = array_source(np.full((2, 4, 4), 0.5, np.float32), [0, 1])
    assert source.x_train.dtype == np.uint8 and source.x_train[0, 0, 0, 0] == 128
    with pytest.raises(DataError, match="x_train has 2 images but y_train has 3 labels"):
        array_source(np.zeros((2, 4, 4)), [0, 1, 1])


def test_class_selection_relabels_in_given_order(fashion_npz):
    source = load_source(DataConfig(source=f"npz:{fashion_npz}", classes=("Bag", 0)))
    assert source.class_names == ("Bag", "T-shirt/top")
    assert set(np.unique(source.y_train)) == {0, 1}
    with pytest.raises(DataError, match="names class 'Hat', which is not in the source"):
        load_source(DataConfig(source=f"npz:{fashion_npz}", classes=("Hat",)))


def test_image_folder_lists_classes_and_skips_non_images(tmp_path):
    root = write_png_folder(tmp_path / "imgs")
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / "empty.png").write_bytes(b"")
    (root / "dog" / ".hidden.png").write_bytes(b"x")
    source = load_source(DataConfig(source=f"folder:{root}"))
    assert source.kind == "files" and source.class_names == ("cat", "dog")
    assert len(source.x_train) == 6 and source.y_train.tolist() == [0, 0, 0, 1, 1, 1]
    reasons = {p.split("/")[-1]: r for p, r in source.skipped}
    assert reasons == {"notes.txt": "not an image extension", "empty.png": "empty file", ".hidden.png": "hidden file"}


def test_image_folder_errors_name_the_path(tmp_path):
    with pytest.raises(DataError, match="image folder not found: .*missing"):
        load_source(DataConfig(source=f"folder:{tmp_path / 'missing'}"))
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="has no class sub-folders"):
        load_source(DataConfig(source=f"folder:{tmp_path / 'flat'}"))
    write_png_folder(tmp_path / "split" / "train", classes=("a", "b"))
    write_png_folder(tmp_path / "split" / "test", classes=("a", "c"))
    with pytest.raises(DataError, match="class folders differ between .*train \\(a, b\\) and .*test \\(a, c\\)"):
        load_source(DataConfig(source=f"folder:{tmp_path / 'split'}"))


def test_tfds_by_name_with_mock_data(tmp_path, monkeypatch):
    # mock_data replaces the download with generated examples; emulate a machine that is online.
    monkeypatch.setattr("fmkeras.data.tfds_source._network_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=12):
        source = load_source(DataConfig(source="tfds:fashion_mnist"))
    assert source.name == "tfds:fashion_mnist" and source.x_train.shape == (12,) and source.kind == "encoded"
    assert source.image_shape == (28, 28, 1)
    assert source.x_test is not None and source.class_names[9] == "Ankle boot"


def test_tfds_unknown_or_unprepared_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="unknown TFDS dataset 'no_such_set'"):
        load_source(DataConfig(source="tfds:no_such_set"))
    with pytest.raises(DataError, match=r"'mnist' is not prepared in .* and downloading is off.*tfds build mnist"):
        load_source(DataConfig(source="tfds:mnist", download=False))


def test_unknown_source_kind():
    with pytest.raises(DataError, match="needs a path or name after 'folder:'"):
        load_source(DataConfig(source="folder:"))
