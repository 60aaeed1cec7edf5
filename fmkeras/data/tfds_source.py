"""Any TensorFlow Datasets image dataset by name, e.g. `tfds:fashion_mnist`, `tfds:tf_flowers`.

Images stay encoded (PNG/JPEG bytes, TFDS' SkipDecoding) until the pipeline decodes and resizes
them one by one in tf.data, so datasets whose images differ in size work and memory holds the
compressed files, not their pixels.

TFDS downloads on first use; offline, the dataset must already be prepared in `data_dir`
(default ~/tensorflow_datasets), otherwise the error says what to place where.
"""
from __future__ import annotations

import os
import socket

import numpy as np

from fmkeras.data.source import Source
from fmkeras.errors import DataError


def _encoded_examples(builder, split: str, limit) -> tuple:
    """(object array of encoded image bytes, int64 labels) of one split; nothing is decoded here."""
    import tensorflow_datasets as tfds
    ds = builder.as_dataset(split=split, as_supervised=True, decoders={"image": tfds.decode.SkipDecoding()})
    if limit:
        ds = ds.take(limit)
    images, labels = [], []
    for image, label in tfds.as_numpy(ds):
        images.append(image)
        labels.append(label)
    if not images:
        raise DataError(f"TFDS split {builder.name}/{split} is empty")
    x = np.empty(len(images), dtype=object)
    x[:] = images
    return x, np.asarray(labels, np.int64)


TFDS_HOST = "storage.googleapis.com"


def _network_reachable(host: str = TFDS_HOST, timeout: float = 5.0) -> bool:
    """One quick lookup+connect, so offline machines fail in seconds, not after TFDS' retries."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _not_prepared(name: str, data_dir: str, why: str) -> DataError:
    return DataError(
        f"TFDS dataset {name!r} is not prepared in {data_dir} and {why}. On a machine with internet run "
        f"`tfds build {name} --data_dir=DIR` and copy DIR/{name} to {data_dir}/{name}, or set TFDS_DATA_DIR.")


def tfds_source(name: str, data_dir: str = None, limit_train: int = None, limit_test: int = None,
                download: bool = True) -> Source:
    """Lists `name`'s train and test splits as encoded images and labels.

    download: bool. Download and prepare the dataset when it is not in `data_dir` yet.
    """
    import tensorflow_datasets as tfds
    builder, data_dir = prepared_builder(name, data_dir, download)
    info = builder.info
    if "image" not in info.features or "label" not in info.features:
        raise DataError(f"TFDS dataset {name!r} has no image+label features; it has: "
                        f"{', '.join(info.features.keys())}")
    # Mocked or partially described builders may list no splits; train and test are the convention.
    splits = list(info.splits.keys()) or ["train", "test"]
    test_split = "test" if "test" in splits else None
    x_train, y_train = _encoded_examples(builder, "train", limit_train)
    x_test = y_test = None
    if test_split:
        x_test, y_test = _encoded_examples(builder, test_split, limit_test)
    label = info.features["label"]
    class_names = tuple(label.names) if hasattr(label, "names") else tuple(str(i) for i in range(label.num_classes))
    shape = tuple(info.features["image"].shape)
    fixed = shape if all(isinstance(d, int) for d in shape) else None  # (H, W, C) when every image has it
    return Source(name=f"tfds:{name}", kind="encoded", class_names=class_names, x_train=x_train,
                  y_train=y_train, x_test=x_test, y_test=y_test, channels=int(shape[-1] or 3), fixed_shape=fixed)


def prepared_builder(name: str, data_dir: str = None, download: bool = True) -> tuple:
    """(TFDS builder for `name`, its data_dir), prepared; offline or unknown names raise DataError."""
    import tensorflow_datasets as tfds
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"unknown TFDS dataset {name!r} (see `tfds.list_builders()`)") from None
    if not builder.is_prepared():
        if not download:
            raise _not_prepared(name, data_dir, "downloading is off (data.download=false)")
        if not _network_reachable():
            raise _not_prepared(name, data_dir, f"{TFDS_HOST} cannot be reached (offline?)")
        try:
            builder.download_and_prepare()
        except Exception as err:  # noqa: BLE001 - any download failure becomes one actionable message
            detail = str(err).splitlines()[0][:200] if str(err) else "no detail"
            raise _not_prepared(name, data_dir, f"could not be downloaded ({type(err).__name__}: {detail})") from None
    return builder, data_dir
