"""Evaluate a model on a test set and write metrics JSON and plots into a run directory."""
from __future__ import annotations

import logging
import os

from fmkeras.atomic_files import write_json
from fmkeras.evaluate.metrics import classification_report, predict_dataset
from fmkeras.evaluate.plots import plot_confusion_matrix, plot_misclassified


def evaluate_predictions(predict_fn, dataset, class_names, out_dir: str, prefix: str = "test",
                         gradcam_model=None) -> dict:
    """Predicts `dataset`, writes `<prefix>_metrics.json`, confusion matrix and misclassified PNGs.

    gradcam_model: the classifier behind `predict_fn`; its Grad-CAM heatmaps of the misclassified images go
    to `<prefix>_gradcam.png` (skipped, logged and noted in the report when its backbone has no conv map).
    """
    os.makedirs(out_dir, exist_ok=True)
    probabilities, labels, images = predict_dataset(predict_fn, dataset)
    report = classification_report(probabilities, labels, class_names)
    if gradcam_model is not None:
        from fmkeras.evaluate.gradcam import plot_gradcam
        path = os.path.join(out_dir, f"{prefix}_gradcam.png")
        try:
            report["gradcam"] = {"plot": plot_gradcam(gradcam_model, images, labels, probabilities, class_names,
                                                      path)}
        except ValueError as err:  # e.g. a ViT backbone: tokens, not a feature map
            logging.getLogger("fmkeras").warning("Grad-CAM skipped: %s", err)
            report["gradcam"] = {"skipped": str(err)}
    write_json(os.path.join(out_dir, f"{prefix}_metrics.json"), report)
    plot_confusion_matrix(report["confusion_matrix"], class_names, os.path.join(out_dir, f"{prefix}_confusion.png"))
    plot_misclassified(images, labels, probabilities, class_names, os.path.join(out_dir, f"{prefix}_misclassified.png"))
    return report
