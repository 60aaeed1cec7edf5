"""Evaluate a text classifier: metrics JSON, confusion matrix PNG and the most confident mistakes."""
from __future__ import annotations

import os

import numpy as np

from fmkeras.evaluate.metrics import classification_report
from fmkeras.evaluate.plots import plot_confusion_matrix
from fmkeras.evaluate.report import write_json


def predict_text_dataset(predict_fn, dataset) -> tuple:
    """Runs `predict_fn` (strings -> probabilities) over batched (texts, labels); returns (probs, labels, texts)."""
    probs, labels, texts = [], [], []
    for x, y in dataset:
        probs.append(np.asarray(predict_fn(x)))
        labels.append(np.asarray(y))
        texts.extend(t.decode("utf-8", errors="replace") for t in np.asarray(x))
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64), texts


def evaluate_text_predictions(predict_fn, dataset, class_names, out_dir: str, prefix: str = "test",
                              mistakes: int = 30) -> dict:
    """Writes `<prefix>_metrics.json`, `<prefix>_confusion.png` and `<prefix>_misclassified.json`."""
    os.makedirs(out_dir, exist_ok=True)
    probabilities, labels, texts = predict_text_dataset(predict_fn, dataset)
    report = classification_report(probabilities, labels, class_names)
    write_json(os.path.join(out_dir, f"{prefix}_metrics.json"), report)
    plot_confusion_matrix(report["confusion_matrix"], class_names, os.path.join(out_dir, f"{prefix}_confusion.png"))
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]])][:mistakes]
    write_json(os.path.join(out_dir, f"{prefix}_misclassified.json"), [
        {"text": texts[i], "true": class_names[labels[i]], "predicted": class_names[predictions[i]],
         "probability": round(float(probabilities[i, predictions[i]]), 4)} for i in wrong])
    return report
