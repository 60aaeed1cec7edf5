"""fmkeras/data/idx.py on Debian's real Fashion-MNIST files and on broken files."""
import gzip

import numpy as np
import pytest

from fmkeras.data.idx import FASHION_MNIST_CLASSES, idx_source, read_idx
from fmkeras.errors import DataError


def test_fashion_mnist_shapes_and_labels(fashion):
    assert fashion.x_train.shape == (60000, 28, 28, 1) and fashion.x_train.dtype == np.uint8
    assert fashion.x_test.shape == (10000, 28, 28, 1)
    assert fashion.class_names == FASHION_MNIST_CLASSES
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_generic_idx_dir_round_trip(tmp_path):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    for split in ("train", "t10k"):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.array([0, 2, 1]))
    source = idx_source(str(tmp_path))
    assert source.x_train.shape == (3, 4, 5, 1)
    np.testing.assert_array_equal(source.x_train[..., 0], images)
    assert source.class_names == ("0", "1", "2")


def test_truncated_idx_names_file(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\0" * 100)
    with pytest.raises(DataError, match="x-idx3-ubyte is truncated"):
        read_idx(str(path))


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(DataError, match="data directory not found: .*nowhere"):
        idx_source(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="missing IDX file .*train-images-idx3-ubyte"):
        idx_source(str(tmp_path))
