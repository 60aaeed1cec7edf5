"""fmkeras/data/labels.py + pipeline: k labels per class (stratified, seeded) and seeded label noise."""
import dataclasses

import numpy as np
import pytest

from fmkeras.config import DataConfig
from fmkeras.data import build_datasets
from fmkeras.data.labels import noisy_labels, per_class_indices
from fmkeras.errors import DataError


def test_per_class_indices_is_stratified_and_seeded():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    keep = per_class_indices(labels, 5, seed=3)
    assert np.bincount(labels[keep]).tolist() == [5, 5, 5, 5]
    np.testing.assert_array_equal(keep, per_class_indices(labels, 5, seed=3))
    assert not np.array_equal(keep, per_class_indices(labels, 5, seed=4))
    with pytest.raises(DataError, match="class 'a' has only 10 training examples"):
        per_class_indices(labels, 11, seed=0, class_names=("a", "b", "c", "d"))


def test_noisy_labels_flip_exactly_the_fraction_to_other_classes():
    labels = np.arange(1000) % 10
    noisy, flipped = noisy_labels(labels, 0.3, 10, seed=1)
    assert len(flipped) == 300 and (noisy != labels).sum() == 300
    assert np.all(noisy[flipped] != labels[flipped]) and noisy.min() >= 0 and noisy.max() <= 9
    np.testing.assert_array_equal(noisy, noisy_labels(labels, 0.3, 10, seed=1)[0])
    # Wrong labels are spread over the other classes, not shifted to one neighbour.
    assert len(np.unique((noisy[flipped] - labels[flipped]) % 10)) == 9


def _labels(ds):
    return np.concatenate([y.numpy() for _, y in ds])


def test_pipeline_applies_labels_per_class_and_noise_to_train_only(fashion):
    cfg = DataConfig(validation_split=0.1, labels_per_class=6, limit_test=50)
    data = build_datasets(fashion, cfg, batch_size=32)
    assert data.num_train == 60 and np.bincount(_labels(data.train)).tolist() == [6] * 10
    assert data.num_val == 6000, "the validation split is not subsampled"
    noisy = build_datasets(fashion, dataclasses.replace(cfg, label_noise=0.5, shuffle_buffer=1), batch_size=60)
    clean = build_datasets(fashion, dataclasses.replace(cfg, shuffle_buffer=1), batch_size=60)
    # Same images in the same order; exactly half the labels differ.
    (x_noisy, y_noisy), (x_clean, y_clean) = next(iter(noisy.train)), next(iter(clean.train))
    np.testing.assert_array_equal(x_noisy.numpy(), x_clean.numpy())
    assert int((y_noisy.numpy() != y_clean.numpy()).sum()) == 30
    np.testing.assert_array_equal(_labels(noisy.test), _labels(clean.test))
