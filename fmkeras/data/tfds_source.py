"""Any TensorFlow Datasets dataset by name, e.g. `tfds:fashion_mnist`.

TFDS downloads on first use; offline, the dataset must already be prepared in `data_dir`
(default ~/tensorflow_datasets), otherwise the error says what to place where.
"""
from __future__ import annotations

import os

import numpy as np

from fmkeras.data.source import Source
from fmkeras.errors import DataError


def _to_arrays(ds, limit):
    import tensorflow_datasets as tfds
    if limit:
        ds = ds.take(limit)
    images, labels = [], []
    for image, label in tfds.as_numpy(ds):
        images.append(image)
        labels.append(label)
    if not images:
        raise DataError("TFDS split is empty")
    return np.stack(images).astype(np.uint8), np.asarray(labels, np.int64)


def tfds_source(name: str, data_dir: str = None, limit_train: int = None, limit_test: int = None) -> Source:
    """Loads `name`'s train and test splits as arrays (images must share one size)."""
    import tensorflow_datasets as tfds
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"unknown TFDS dataset {name!r} (see `tfds.list_builders()`)") from None
    try:
        builder.download_and_prepare()
    except Exception as err:  # noqa: BLE001 - any download failure becomes one actionable message
        raise DataError(
            f"TFDS dataset {name!r} is not prepared in {data_dir} and could not be downloaded "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else 'no detail'}). "
            f"On a machine with internet run `tfds build {name} --data_dir=DIR` and copy DIR/{name} "
            f"to {data_dir}/{name}, or set TFDS_DATA_DIR.") from None
    info = builder.info
    if "image" not in info.features or "label" not in info.features:
        raise DataError(f"TFDS dataset {name!r} has no image+label features; it has: "
                        f"{', '.join(info.features.keys())}")
    test_split = "test" if "test" in info.splits else None
    x_train, y_train = _to_arrays(builder.as_dataset(split="train", as_supervised=True), limit_train)
    x_test = y_test = None
    if test_split:
        x_test, y_test = _to_arrays(builder.as_dataset(split=test_split, as_supervised=True), limit_test)
    label = info.features["label"]
    class_names = tuple(label.names) if hasattr(label, "names") else tuple(str(i) for i in range(label.num_classes))
    return Source(name=f"tfds:{name}", kind="arrays", class_names=class_names, x_train=x_train,
                  y_train=y_train, x_test=x_test, y_test=y_test, channels=int(x_train.shape[-1]))
