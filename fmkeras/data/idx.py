"""IDX files (the MNIST format), e.g. Debian's `dataset-fashion-mnist` package.

Example:
    source = idx_source("/usr/share/datasets/fashion-mnist")
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from fmkeras.data.source import Source
from fmkeras.errors import DataError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (optionally gzipped) into an array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read IDX file {path}: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"IDX file {path} is truncated or padded: header says shape {shape} "
                        f"({expected} bytes), file has {len(data) - header}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


def _find(directory: str, stem: str) -> str:
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise DataError(f"missing IDX file {os.path.join(directory, stem)}[.gz]")


def idx_source(directory: str, class_names: tuple = None) -> Source:
    """Loads train/t10k image+label IDX files from `directory` as a uint8 array source."""
    if not os.path.isdir(directory):
        hint = (" (install it with `apt-get install dataset-fashion-mnist`)"
                if os.path.abspath(directory) == FASHION_MNIST_DIR else "")
        raise DataError(f"data directory not found: {directory}{hint}")
    splits = {}
    for split in ("train", "t10k"):
        images = read_idx(_find(directory, f"{split}-images-idx3-ubyte"))
        labels = read_idx(_find(directory, f"{split}-labels-idx1-ubyte")).astype(np.int64)
        if images.ndim != 3 or len(images) != len(labels):
            raise DataError(f"{directory}: {split} images {images.shape} do not match labels {labels.shape}")
        splits[split] = (images[..., None].astype(np.uint8), labels)
    if class_names is None:
        num = int(max(splits["train"][1].max(), splits["t10k"][1].max())) + 1
        class_names = FASHION_MNIST_CLASSES if os.path.abspath(directory) == FASHION_MNIST_DIR else tuple(
            str(i) for i in range(num))
    return Source(name=f"idx:{directory}", kind="arrays", class_names=tuple(class_names),
                  x_train=splits["train"][0], y_train=splits["train"][1],
                  x_test=splits["t10k"][0], y_test=splits["t10k"][1], channels=1)


def fashion_mnist_source(directory: str = None) -> Source:
    """Fashion-MNIST from Debian's package (or FMKERAS_FASHION_MNIST_DIR, or `directory`)."""
    directory = directory or os.environ.get("FMKERAS_FASHION_MNIST_DIR", FASHION_MNIST_DIR)
    source = idx_source(directory, FASHION_MNIST_CLASSES)
    return Source(**{**source.__dict__, "name": "fashion_mnist"})
