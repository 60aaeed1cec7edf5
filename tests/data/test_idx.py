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


# Without Debian's package (macOS, other Linux, no root), Fashion-MNIST comes the keras.datasets way. The network
# is faked: a "download" copies Debian's real files, a failed one raises what keras.utils.get_file raises offline.
def _no_debian_package(monkeypatch, tmp_path):
    import fmkeras.data.idx as idx
    monkeypatch.delenv("FMKERAS_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setattr(idx, "FASHION_MNIST_DIR", str(tmp_path / "not-installed"))
    return idx


def test_fashion_mnist_downloads_the_keras_way_without_the_debian_package(monkeypatch, tmp_path, caplog):
    import shutil

    import keras

    from fmkeras.config import DataConfig
    from fmkeras.data.idx import FASHION_MNIST_DIR
    from fmkeras.data.sources import load_source
    idx = _no_debian_package(monkeypatch, tmp_path)
    fetched = []

    def fake_get_file(fname, origin, cache_subdir):
        fetched.append(origin)
        target = tmp_path / "keras_home" / cache_subdir / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f"{FASHION_MNIST_DIR}/{fname}", target)
        return str(target)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    with caplog.at_level("WARNING", logger="fmkeras"):
        source = load_source(DataConfig())  # what `fmkeras train --recipe=cnn_fashion` calls
    assert sorted(fetched) == sorted(idx.KERAS_ORIGIN + name for name in idx.FASHION_MNIST_SHA256)
    assert source.name == "fashion_mnist" and source.x_train.shape == (60000, 28, 28, 1)
    assert source.class_names == FASHION_MNIST_CLASSES and np.bincount(source.y_test).tolist() == [1000] * 10
    assert "not installed" in caplog.text and "keras.datasets" in caplog.text


def test_fashion_mnist_offline_without_the_package_says_what_to_do(monkeypatch, tmp_path):
    import keras
    _no_debian_package(monkeypatch, tmp_path)

    def offline(fname, origin, cache_subdir):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    from fmkeras.data.idx import fashion_mnist_source
    with pytest.raises(DataError) as err:
        fashion_mnist_source()
    message = str(err.value)
    assert "URL fetch failure" in message and "apt-get install dataset-fashion-mnist" in message
    assert "FMKERAS_FASHION_MNIST_DIR" in message and "connect to the internet" in message


def test_corrupt_fashion_mnist_download_is_refused_and_deleted(monkeypatch, tmp_path):
    import keras
    _no_debian_package(monkeypatch, tmp_path)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"

    def tampered(fname, origin, cache_subdir):
        _write_idx(bad, np.zeros(60000, np.uint8))  # a valid IDX file with the wrong content
        return str(bad)

    monkeypatch.setattr(keras.utils, "get_file", tampered)
    from fmkeras.data.idx import fashion_mnist_source
    with pytest.raises(DataError, match="failed its checksum"):
        fashion_mnist_source()
    assert not bad.exists()


def test_make_fashion_mnist_without_apt_get_defers_to_the_download(tmp_path):
    import os
    import shutil
    import subprocess
    bin_dir = tmp_path / "bin"  # a PATH with `id` but no apt-get (macOS, non-Debian Linux)
    bin_dir.mkdir()
    os.symlink(shutil.which("id"), bin_dir / "id")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([shutil.which("make"), "-s", "fashion-mnist", f"FASHION_DIR={tmp_path}/none"], cwd=root,
                          env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "downloaded via keras.datasets on first use" in done.stdout
