"""Test-set predictions, accuracy, confusion matrix and per-class precision/recall/F1."""
from __future__ import annotations

import numpy as np


def predict_dataset(predict_fn, dataset) -> tuple:
    """Runs `predict_fn` (images -> probabilities) over a batched (images, labels) dataset.

    Returns (probabilities (N, K), labels (N,), images (N, H, W, C) uint8).
    """
    probs, labels, images = [], [], []
    for x, y in dataset:
        probs.append(np.asarray(predict_fn(x)))
        labels.append(np.asarray(y))
        images.append(np.clip(np.rint(np.asarray(x)), 0, 255).astype(np.uint8))
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64), np.concatenate(images)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = examples of true class i predicted as class j."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def classification_report(probabilities: np.ndarray, labels: np.ndarray, class_names) -> dict:
    """Accuracy, macro F1 and per-class precision/recall/F1/support, JSON-ready."""
    predictions = probabilities.argmax(axis=1)
    counts = confusion_matrix(labels, predictions, len(class_names))
    true_pos = np.diag(counts).astype(float)
    predicted = counts.sum(axis=0).astype(float)
    actual = counts.sum(axis=1).astype(float)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros_like(true_pos), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(true_pos), where=denom > 0)
    per_class = {name: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
                        "support": int(s)}
                 for name, p, r, f, s in zip(class_names, precision, recall, f1, actual)}
    return {"accuracy": round(float((predictions == labels).mean()), 4), "macro_f1": round(float(f1.mean()), 4),
            "num_examples": int(len(labels)), "per_class": per_class, "confusion_matrix": counts.tolist()}
