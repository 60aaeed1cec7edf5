"""fmkeras/evaluate/multilabel.py: average precision equal to sklearn's, thresholds that maximise validation
F1, micro/macro F1 equal to sklearn's at those thresholds."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from fmkeras.evaluate.multilabel import (average_precision, best_f1_threshold, multi_label_report,
                                         pick_thresholds)


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_equals_sklearn_including_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(200) < 0.3
    scores = np.round(rng.random(200) * 0.5 + 0.4 * labels, 1 + seed % 2)  # rounding makes ties
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_average_precision_edge_cases():
    assert average_precision([0, 1, 1], [0.1, 0.9, 0.8]) == 1.0
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(average_precision_score([1, 0], [0.5, 0.5]))
    assert np.isnan(average_precision([0, 0], [0.3, 0.7]))  # no positive: undefined, left out of the mAP


def test_threshold_maximises_f1_and_sits_between_scores():
    labels = np.array([1, 1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    threshold = best_f1_threshold(labels, scores)
    assert threshold == pytest.approx(0.4)  # all three positives in (F1 6/7), halfway between 0.6 and 0.2
    cuts = np.unique(np.r_[scores, 0.0])
    assert f1_score(labels, scores >= threshold) == max(f1_score(labels, scores >= c) for c in cuts)
    assert best_f1_threshold([0, 0], [0.9, 0.1]) == 0.5  # no positive: the default


def test_report_uses_validation_thresholds_and_matches_sklearn():
    rng = np.random.default_rng(0)
    val_labels, test_labels = rng.random((300, 4)) < 0.3, rng.random((200, 4)) < 0.3
    noise = lambda labels: np.clip(0.35 * labels + 0.2 * rng.random(labels.shape) * (1 + np.arange(4)), 0, 1)  # noqa
    thresholds, source = pick_thresholds(noise(val_labels), val_labels)
    assert source == "validation" and thresholds.shape == (4,) and not np.allclose(thresholds, 0.5)
    scores = noise(test_labels)
    report = multi_label_report(scores, test_labels, ["a", "b", "c", "d"], thresholds, source)
    predicted = scores >= thresholds
    assert report["mAP"] == pytest.approx(average_precision_score(test_labels, scores, average="macro"), abs=1e-4)
    for avg in ("micro", "macro"):
        assert report[f"{avg}_f1"] == pytest.approx(f1_score(test_labels, predicted, average=avg), abs=1e-4)
        assert report[f"{avg}_precision"] == pytest.approx(precision_score(test_labels, predicted, average=avg,
                                                                           zero_division=0), abs=1e-4)
        assert report[f"{avg}_recall"] == pytest.approx(recall_score(test_labels, predicted, average=avg), abs=1e-4)
    assert report["thresholds"] == [round(float(t), 4) for t in thresholds]
    assert report["per_class"]["d"]["support"] == int(test_labels[:, 3].sum())
    assert report["threshold_source"] == "validation"
    default, source = pick_thresholds()
    assert default is None and source == "default_0.5"
    assert multi_label_report(scores, test_labels, list("abcd"))["thresholds"] == [0.5] * 4
