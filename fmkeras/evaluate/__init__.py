"""Evaluate: metrics, reports and plots."""
from fmkeras.evaluate.metrics import classification_report, confusion_matrix, predict_dataset
from fmkeras.evaluate.plots import plot_history
from fmkeras.evaluate.report import evaluate_predictions, write_json
from fmkeras.evaluate.text_report import evaluate_text_predictions

__all__ = ["classification_report", "confusion_matrix", "predict_dataset", "plot_history",
           "evaluate_predictions", "write_json", "evaluate_text_predictions"]
