"""Builds the `Source` record of a labeled text set from parallel lists of texts, labels and splits.

Every text reader (fmkeras.data.text's CSV / folder / TFDS readers, fmkeras.data.debian_packages and
fmkeras.data.debian_snapshot) ends here, so this module imports none of them: the readers depend on it,
never on each other.

Example:
    source = make_text_source("text:toy", ["good", "bad"], ["pos", "neg"], ["train", "test"])
    source.class_names  # -> ("neg", "pos")
"""
from __future__ import annotations

import numpy as np

from fmkeras.data.source import Source
from fmkeras.errors import DataError


def labels_to_ids(labels, class_names=None) -> tuple:
    """(class names, int64 ids): the names sorted unless `class_names` fixes their order."""
    names = tuple(class_names) if class_names else tuple(sorted(set(labels)))
    index = {name: i for i, name in enumerate(names)}
    return names, np.asarray([index[label] for label in labels], np.int64)


def make_text_source(name: str, texts, labels, splits) -> Source:
    """A text `Source`; `splits` holds "train" or "test" per text (no test texts: `x_test` is None)."""
    if not texts:
        raise DataError(f"{name}: no labeled texts found")
    texts = np.asarray(texts, dtype=object)
    class_names, ids = labels_to_ids(labels)
    splits = np.asarray(splits)
    train, test = splits != "test", splits == "test"
    return Source(name=name, kind="text", class_names=class_names, x_train=texts[train], y_train=ids[train],
                  x_test=texts[test] if test.any() else None, y_test=ids[test] if test.any() else None,
                  channels=0)
