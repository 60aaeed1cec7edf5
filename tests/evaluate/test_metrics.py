"""fmkeras/evaluate: per-class metrics against hand-computed values, plots written."""
import os

import numpy as np
import pytest

from fmkeras.evaluate import classification_report, confusion_matrix, plot_history
from fmkeras.evaluate.plots import plot_confusion_matrix, plot_misclassified


def test_report_matches_hand_computation():
    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    probs = np.eye(3)[predictions]
    report = classification_report(probs, labels, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(0.6)
    a, b, c = (report["per_class"][k] for k in "abc")
    assert (a["precision"], a["recall"], a["f1"]) == (0.5, 0.5, 0.5)
    assert (b["precision"], b["recall"], b["f1"]) == (0.6667, 1.0, 0.8)
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 1)
    assert report["confusion_matrix"] == confusion_matrix(labels, predictions, 3).tolist() == [
        [1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_plots_are_png_files(tmp_path):
    paths = [
        plot_history({"loss": [1, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]}, str(tmp_path / "h.png")),
        plot_confusion_matrix([[3, 1], [0, 4]], ["x", "y"], str(tmp_path / "c.png")),
        plot_misclassified(np.zeros((3, 8, 8, 1), np.uint8), np.array([0, 1, 0]), np.eye(2)[[1, 1, 0]], ["x", "y"],
                           str(tmp_path / "m.png")),
    ]
    for path in paths:
        with open(path, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 1000
