"""IDX files (the MNIST format), e.g. Debian's `dataset-fashion-mnist` package.

Fashion-MNIST comes from, in order: `FMKERAS_FASHION_MNIST_DIR` (or an explicit directory) if set, Debian's
package at /usr/share/datasets/fashion-mnist if installed, else the files keras.datasets.fashion_mnist uses,
downloaded once into ~/.keras/datasets/fashion-mnist with `keras.utils.get_file`; each file's decompressed
content is checked against its SHA-256 (Keras' own loader checks none), so a corrupt or tampered download
is refused and deleted. When none of these works the error says what to do.

Example:
    source = idx_source("/usr/share/datasets/fashion-mnist")
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import os

import numpy as np

from fmkeras.data.source import Source
from fmkeras.errors import DataError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_CACHE_SUBDIR = os.path.join("datasets", "fashion-mnist")
# SHA-256 of each file's decompressed IDX bytes (the same in Debian's package and the upstream .gz files,
# which are compressed differently).
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
NO_FASHION_MNIST_HELP = (
    "Fashion-MNIST is not available: Debian's package is not installed at {debian} and downloading it the "
    "way keras.datasets.fashion_mnist does failed ({reason}). Either connect to the internet and rerun (the "
    "files are fetched once into ~/.keras/datasets/fashion-mnist), or install the package "
    "(`sudo apt-get install dataset-fashion-mnist` on Debian/Ubuntu), or copy the four files "
    "{files} into a directory and set FMKERAS_FASHION_MNIST_DIR=that directory.")
log = logging.getLogger("fmkeras")
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


def _verified(path: str, name: str) -> str:
    """`path` if its decompressed bytes have the published SHA-256; else deletes it and raises DataError."""
    try:
        with gzip.open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
    except (OSError, EOFError) as err:
        digest = f"unreadable ({err})"
    if digest != FASHION_MNIST_SHA256[name]:
        os.remove(path)  # a later run downloads it again instead of failing on the same bad file
        raise DataError(f"downloaded {path} failed its checksum (sha256 of the IDX data {digest}, expected "
                        f"{FASHION_MNIST_SHA256[name]}); the file was deleted, rerun to download it again")
    return path


def download_fashion_mnist() -> str:
    """Fetches the four Fashion-MNIST files keras.datasets uses into ~/.keras/datasets/fashion-mnist (once),
    checks each one's SHA-256 and returns the directory. Raises DataError saying what to do when offline."""
    import keras  # only this fallback needs it

    paths = []
    for name in FASHION_MNIST_SHA256:
        try:
            path = keras.utils.get_file(name, origin=KERAS_ORIGIN + name, cache_subdir=KERAS_CACHE_SUBDIR)
        except Exception as err:  # get_file raises a bare Exception ("URL fetch failure on ...")
            raise DataError(NO_FASHION_MNIST_HELP.format(debian=FASHION_MNIST_DIR, reason=f"{name}: {err}",
                                                         files=", ".join(FASHION_MNIST_SHA256))) from None
        paths.append(_verified(path, name))
    return os.path.dirname(paths[0])


def fashion_mnist_source(directory: str = None) -> Source:
    """Fashion-MNIST from `directory` or FMKERAS_FASHION_MNIST_DIR if set, else Debian's package, else the
    checksummed keras.datasets download (logged, never silent)."""
    directory = directory or os.environ.get("FMKERAS_FASHION_MNIST_DIR")
    if not directory:
        if os.path.isfile(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")):
            directory = FASHION_MNIST_DIR
        else:
            log.warning("Debian's dataset-fashion-mnist is not installed at %s; using the keras.datasets "
                        "download (~/.keras/datasets/fashion-mnist, SHA-256 checked)", FASHION_MNIST_DIR)
            directory = download_fashion_mnist()
    source = idx_source(directory, FASHION_MNIST_CLASSES)
    return Source(**{**source.__dict__, "name": "fashion_mnist"})
