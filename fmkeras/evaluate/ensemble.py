"""Ensembles: average the class probabilities of several models and score each member and the average.

Members may take different input sizes or channels (e.g. a 28x28 grayscale CNN and a 32x32 RGB
ResNet): each member's predict function gets the batch resized/converted to what it takes, with
the same ops training and serving use (fmkeras.data.decode.prepare_image).

Example:
    report = ensemble_report([("a", predict_a), ("b", predict_b)], data.test, data.class_names)
    report["ensemble"]["accuracy"], [m["accuracy"] for m in report["members"]]
"""
from __future__ import annotations

import numpy as np

from fmkeras.data.decode import prepare_image
from fmkeras.errors import DataError
from fmkeras.evaluate.metrics import classification_report


def adapt_input(predict_fn, image_shape):
    """Wraps `predict_fn` so batches of any size/channels reach it at `image_shape` (None = as they come)."""
    if image_shape is None:
        return predict_fn
    size, channels = tuple(image_shape[:2]), int(image_shape[2])

    def predict(x):
        if tuple(x.shape[1:]) == (*size, channels):
            return predict_fn(x)
        return predict_fn(prepare_image(x, size, channels))
    return predict


def ensemble_report(members: list, dataset, class_names) -> dict:
    """Scores each (name, predict_fn) member and the mean of their probabilities on a batched dataset."""
    if len(members) < 2:
        raise DataError(f"an ensemble needs at least two models. Received: {len(members)}")
    probabilities = [[] for _ in members]
    labels = []
    for x, y in dataset:
        for i, (_, predict) in enumerate(members):
            probabilities[i].append(np.asarray(predict(x), np.float64))
        labels.append(np.asarray(y))
    labels = np.concatenate(labels).astype(np.int64)
    probabilities = [np.concatenate(p) for p in probabilities]
    for (name, _), probs in zip(members, probabilities):
        if probs.shape[1] != len(class_names):
            raise DataError(f"model {name} predicts {probs.shape[1]} classes but the data has {len(class_names)}: "
                            f"{', '.join(class_names)}")
    report = {"num_examples": int(len(labels)), "members": []}
    for (name, _), probs in zip(members, probabilities):
        scores = classification_report(probs, labels, class_names)
        report["members"].append({"model": name, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]})
    mean = np.mean(probabilities, axis=0)
    report["ensemble"] = classification_report(mean, labels, class_names)
    return report
