"""The best trial is retrained on exactly the search's training + validation images."""
from __future__ import annotations

import numpy as np
import pytest

from fmkeras.config import DataConfig
from fmkeras.data import build_datasets
from fmkeras.data.source import Source
from fmkeras.tune.retrain import train_plus_val


def _ids(ds) -> set:
    return {int(img[0, 0, 0]) for x, _ in ds for img in x.numpy()}


@pytest.mark.parametrize("limit", [None, 40])
def test_train_plus_val_is_the_union_of_the_search_splits(limit):
    n = 100
    x = np.tile(np.arange(n, dtype=np.uint8)[:, None, None, None], (1, 4, 4, 1))
    source = Source(name="ids", kind="arrays", class_names=("a", "b"), x_train=x, y_train=np.arange(n) % 2,
                    channels=1)
    cfg = DataConfig(source="npz:unused", validation_split=0.25, limit_train=limit, cache="none")
    search = build_datasets(source, cfg, batch_size=16)
    union = _ids(search.train) | _ids(search.val)
    merged = train_plus_val(source, cfg)
    assert len(merged.y_train) == search.num_train + search.num_val == len(union)
    assert {int(v) for v in merged.x_train[:, 0, 0, 0]} == union


def test_train_plus_val_appends_a_sources_own_validation_split():
    # A source with its own validation split (e.g. folder:DIR with train/ and val/): the search trained on
    # all of x_train (within limit_train) and validated on x_val; the retrain gets both.
    x = np.tile(np.arange(60, dtype=np.uint8)[:, None, None, None], (1, 4, 4, 1))
    source = Source(name="ids", kind="arrays", class_names=("a", "b"), x_train=x[:50], y_train=np.arange(50) % 2,
                    x_val=x[50:], y_val=np.arange(10) % 2, channels=1)
    cfg = DataConfig(source="npz:unused", validation_split=0.25, limit_train=30, cache="none")
    search = build_datasets(source, cfg, batch_size=16)
    merged = train_plus_val(source, cfg)
    assert (search.num_train, search.num_val) == (30, 10)
    assert {int(v) for v in merged.x_train[:, 0, 0, 0]} == _ids(search.train) | _ids(search.val) == \
        set(range(30)) | set(range(50, 60))
    assert merged.x_val is None and len(merged.y_train) == 40
