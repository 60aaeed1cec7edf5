"""Multi-label metrics: average precision per class, mAP, per-class thresholds, micro/macro F1.

- average precision (AP) of one class: the step-wise area under its precision-recall curve,
  sum_n (R_n - R_{n-1}) P_n over the distinct scores from high to low (sklearn's average_precision_score);
  mAP is its mean over the classes that have positives. AP does not depend on any threshold.
- thresholds: per class, the score cut that maximises F1 on the validation split (halfway between the
  chosen score and the next lower one); 0.5 for a class without validation positives, and for every class
  when there is no validation split. The report's `threshold_source` says which.
- micro F1/precision/recall count every (example, class) decision together; macro ones average the per-class
  values (each class counts the same, however rare).

Example:
    thresholds, source = pick_thresholds(val_scores, val_labels)
    report = multi_label_report(test_scores, test_labels, class_names, thresholds, source)
    report["mAP"], report["micro_f1"]
"""
from __future__ import annotations

import os

import numpy as np

from fmkeras.atomic_files import write_json
from fmkeras.evaluate.plots import plot_per_class_scores

DEFAULT_THRESHOLD = 0.5


def _ranked(labels: np.ndarray, scores: np.ndarray) -> tuple:
    """(distinct scores high to low, true positives and false positives at or above each of them)."""
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last index of each distinct score
    true_pos = np.cumsum(labels)[last]
    return scores[last], true_pos, (last + 1) - true_pos


def average_precision(labels, scores) -> float:
    """Step-wise AP of one class's binary `labels` (N,) and `scores` (N,); nan when there is no positive."""
    labels, scores = np.asarray(labels, np.float64) > 0.5, np.asarray(scores, np.float64)
    if not labels.any():
        return float("nan")
    _, true_pos, false_pos = _ranked(labels, scores)
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / true_pos[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_f1_threshold(labels, scores) -> float:
    """The score cut with the highest F1 for one class (ties: the higher cut); DEFAULT_THRESHOLD without
    positives."""
    labels, scores = np.asarray(labels, np.float64) > 0.5, np.asarray(scores, np.float64)
    if not labels.any():
        return DEFAULT_THRESHOLD
    distinct, true_pos, false_pos = _ranked(labels, scores)
    f1 = 2 * true_pos / (2 * true_pos + false_pos + (labels.sum() - true_pos))
    best = int(np.argmax(f1))
    lower = distinct[best + 1] if best + 1 < len(distinct) else 0.0
    return float((distinct[best] + lower) / 2)


def pick_thresholds(scores=None, labels=None) -> tuple:
    """(per-class thresholds (K,), source): max-F1 cuts on validation `scores`/`labels` (N, K), or 0.5 for
    all when there are none. source: "validation" | "default_0.5"."""
    if scores is None or len(scores) == 0:
        return None, "default_0.5"
    thresholds = np.asarray([best_f1_threshold(labels[:, k], scores[:, k]) for k in range(scores.shape[1])])
    return thresholds, "validation"


def _f1(precision, recall):
    denom = precision + recall
    return np.divide(2 * precision * recall, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)


def _ratio(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def multi_label_report(scores, labels, class_names, thresholds=None, threshold_source: str = "default_0.5") -> dict:
    """mAP, micro/macro F1, precision and recall at `thresholds` (K,) (0.5 if None), subset accuracy
    (exact-match ratio) and per-class AP/F1/precision/recall/threshold/support, JSON-ready."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels) > 0.5
    k = len(class_names)
    thresholds = np.full(k, DEFAULT_THRESHOLD) if thresholds is None else np.asarray(thresholds, np.float64)
    predicted = scores >= thresholds
    tp = (predicted & labels).sum(0)
    fp = (predicted & ~labels).sum(0)
    fn = (~predicted & labels).sum(0)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _f1(precision, recall)
    ap = np.asarray([average_precision(labels[:, i], scores[:, i]) for i in range(k)])
    micro_p, micro_r = float(_ratio(tp.sum(), tp.sum() + fp.sum())), float(_ratio(tp.sum(), tp.sum() + fn.sum()))
    rounded = lambda v: None if np.isnan(v) else round(float(v), 4)  # noqa: E731
    per_class = {name: {"ap": rounded(ap[i]), "f1": round(float(f1[i]), 4), "precision": round(float(precision[i]), 4),
                        "recall": round(float(recall[i]), 4), "threshold": round(float(thresholds[i]), 4),
                        "support": int(labels[:, i].sum())}
                 for i, name in enumerate(class_names)}
    return {"mAP": rounded(np.nanmean(ap)) if not np.isnan(ap).all() else None,
            "classes_without_positives": [name for name, v in zip(class_names, ap) if np.isnan(v)],
            "micro_f1": round(float(_f1(np.float64(micro_p), np.float64(micro_r))), 4),
            "micro_precision": round(micro_p, 4), "micro_recall": round(micro_r, 4),
            "macro_f1": round(float(f1.mean()), 4), "macro_precision": round(float(precision.mean()), 4),
            "macro_recall": round(float(recall.mean()), 4),
            "subset_accuracy": round(float((predicted == labels).all(1).mean()), 4),
            "thresholds": [round(float(t), 4) for t in thresholds], "threshold_source": threshold_source,
            "num_examples": int(len(labels)), "labels_per_example": round(float(labels.sum(1).mean()), 4),
            "per_class": per_class}


def predict_multi_label(predict_fn, dataset) -> tuple:
    """(scores (N, K), multi-hot labels (N, K)) of `predict_fn` over a batched (images, labels) dataset."""
    scores, labels = [], []
    for x, y in dataset:
        scores.append(np.asarray(predict_fn(x)))
        labels.append(np.asarray(y))
    return np.concatenate(scores), np.concatenate(labels)


def evaluate_multi_label_predictions(predict_fn, dataset, class_names, out_dir: str, prefix: str = "test",
                                     validation=None) -> dict:
    """Scores `predict_fn` on `dataset` at thresholds picked on the `validation` dataset (0.5 without one);
    writes `<prefix>_metrics.json` and `<prefix>_average_precision.png` (per-class AP and F1) to `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    thresholds, source = pick_thresholds(*predict_multi_label(predict_fn, validation)) if validation is not None \
        else pick_thresholds()
    scores, labels = predict_multi_label(predict_fn, dataset)
    report = multi_label_report(scores, labels, class_names, thresholds, source)
    report["plot"] = plot_per_class_scores(report["per_class"], f"{prefix}: mAP {report['mAP']}, micro F1 "
                                           f"{report['micro_f1']}", os.path.join(out_dir, f"{prefix}_average_precision.png"))
    write_json(os.path.join(out_dir, f"{prefix}_metrics.json"), report)
    return report
