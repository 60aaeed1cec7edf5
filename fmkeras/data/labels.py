"""Training-label edits for low-label and weak-supervision experiments.

`labels_per_class` keeps k examples of every class (stratified, seeded), as in "1% of the
labels" benchmarks; `noisy_labels` flips a fraction of the labels to another random class,
seeded, to study training on noisy (weak) labels; `balanced_indices` / `class_weights` counter an
imbalanced training split (`data.balance`). All act on the training split only.

Example:
    keep = per_class_indices(y[train_idx], k=60, seed=1) ; train_idx = train_idx[keep]
    y_noisy, flipped = noisy_labels(y, fraction=0.3, num_classes=10, seed=1)
"""
from __future__ import annotations

import numpy as np

from fmkeras.errors import DataError


def per_class_indices(labels: np.ndarray, k: int, seed: int, class_names=None) -> np.ndarray:
    """Positions (sorted) of `k` seeded random examples of each class in `labels`.

    Raises DataError naming the class when a class has fewer than `k` examples.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        where = np.flatnonzero(labels == cls)
        if len(where) < k:
            name = class_names[cls] if class_names is not None else cls
            raise DataError(f"`data.labels_per_class`={k} but class {name!r} has only {len(where)} "
                            f"training examples")
        chosen.append(rng.choice(where, size=k, replace=False))
    return np.sort(np.concatenate(chosen))


def noisy_labels(labels: np.ndarray, fraction: float, num_classes: int, seed: int) -> tuple:
    """Returns (labels with round(fraction * N) of them flipped to a different class, flipped positions)."""
    labels = np.asarray(labels).copy()
    if not fraction:
        return labels, np.zeros(0, np.int64)
    if num_classes < 2:
        raise DataError(f"`data.label_noise` needs at least 2 classes to flip between, got {num_classes}")
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(labels), size=int(round(fraction * len(labels))), replace=False))
    # An offset in 1..K-1 (mod K) always lands on a different class, uniformly over the others.
    offsets = rng.integers(1, num_classes, size=len(flipped))
    labels[flipped] = (labels[flipped] + offsets) % num_classes
    return labels, flipped


def balanced_indices(labels: np.ndarray, seed: int) -> np.ndarray:
    """Positions that hold every class as often as the largest one (`data.balance=sample`): each class's own
    examples once, then seeded draws with replacement up to the largest count; shuffled."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    chosen = []
    for cls, count in zip(classes, counts):
        where = np.flatnonzero(labels == cls)
        chosen += [where, rng.choice(where, size=counts.max() - count, replace=True)]
    return rng.permutation(np.concatenate(chosen))


def class_weights(labels: np.ndarray, num_classes: int) -> dict:
    """Class id -> N / (K * count) (`data.balance=weights`, as sklearn's "balanced"); classes with no
    training example are left out."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes)
    present = counts > 0
    return {int(k): float(len(labels) / (present.sum() * counts[k])) for k in np.flatnonzero(present)}
