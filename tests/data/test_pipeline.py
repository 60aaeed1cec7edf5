"""fmkeras/data/pipeline.py: split, shapes, resize/channels, reproducibility."""
import numpy as np
import pytest

from fmkeras.config import AugmentConfig, DataConfig
from fmkeras.data.pipeline import build_datasets, split_indices
from fmkeras.data.sources import load_source
from fmkeras.errors import DataError
from tests.data.test_sources import write_png_folder


def test_split_is_fixed_by_seed_and_disjoint():
    a_train, a_val = split_indices(100, 0.2, seed=7)
    b_train, b_val = split_indices(100, 0.2, seed=7)
    np.testing.assert_array_equal(a_val, b_val)
    assert len(a_val) == 20 and not set(a_train) & set(a_val)
    assert set(split_indices(100, 0.2, seed=8)[1]) != set(a_val)


def test_batches_have_model_shape_and_pixel_range(fashion_npz):
    cfg = DataConfig(source=f"npz:{fashion_npz}", validation_split=0.25)
    data = build_datasets(load_source(cfg), cfg, batch_size=32)
    assert (data.num_train, data.num_val, data.num_test) == (450, 150, 200)
    images, labels = next(iter(data.train))
    assert images.shape == (32, 28, 28, 1) and images.dtype.name == "float32"
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 255.0 and labels.dtype.name == "int64"
    assert sum(int(x.shape[0]) for x, _ in data.val) == 150


def test_resize_and_gray_to_rgb(fashion_npz):
    cfg = DataConfig(source=f"npz:{fashion_npz}", image_size=(32, 32), channels=3, limit_train=64)
    data = build_datasets(load_source(cfg), cfg, batch_size=16)
    images, _ = next(iter(data.test))
    assert data.image_shape == (32, 32, 3) and images.shape == (16, 32, 32, 3)
    np.testing.assert_allclose(images[..., 0], images[..., 2])


def test_same_seed_same_augmented_epoch(fashion_npz):
    cfg = DataConfig(source=f"npz:{fashion_npz}", limit_train=64,
                     augment=AugmentConfig(rotation=20, zoom=0.2, horizontal_flip=True))
    first = next(iter(build_datasets(load_source(cfg), cfg, 16).train))[0].numpy()
    second = next(iter(build_datasets(load_source(cfg), cfg, 16).train))[0].numpy()
    np.testing.assert_array_equal(first, second)
    data = build_datasets(load_source(cfg), cfg, 16)
    epoch1 = next(iter(data.train))[0].numpy()
    epoch2 = next(iter(data.train))[0].numpy()
    assert not np.array_equal(epoch1, epoch2), "each epoch must draw new augmentations"


def test_folder_of_varied_sizes_needs_image_size(tmp_path):
    root = write_png_folder(tmp_path / "f", size=(12, 10))
    write_png_folder(tmp_path / "f", classes=("cat",), per_class=1, size=(20, 30))
    cfg = DataConfig(source=f"folder:{root}", validation_split=0.0)
    with pytest.raises(DataError, match="set `data.image_size`"):
        build_datasets(load_source(cfg), cfg, 4)
    cfg = DataConfig(source=f"folder:{root}", validation_split=0.0, image_size=(16, 16))
    data = build_datasets(load_source(cfg), cfg, 4)
    shapes = {tuple(x.shape[1:]) for x, _ in data.train}
    assert shapes == {(16, 16, 3)} and data.num_train == 6
