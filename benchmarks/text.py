"""Text classification: fmkeras' Transformer text classifier vs TF-IDF + logistic regression.

Both learn Debian package descriptions -> section (recipe `text_debian`, read offline from the apt
lists) on the SAME train / validation / test split in the same run. The baseline is tuned fairly:
word 1-2-gram TF-IDF (sublinear tf) and the logistic-regression C picked on the validation split
that the Transformer run uses for checkpoint selection. Must hold: Transformer test accuracy >=
baseline's (exit status 1 otherwise).

Run: python benchmarks/text.py [--epochs N] [--set field=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from fmkeras.config import apply_overrides, parse_override  # noqa: E402
from fmkeras.data.pipeline import split_indices  # noqa: E402
from fmkeras.data.text import load_text_source  # noqa: E402
from fmkeras.experiment import run_training  # noqa: E402
from fmkeras.recipes import load_recipe  # noqa: E402

C_GRID = (1.0, 10.0, 100.0)


def tfidf_baseline(texts, labels, train_idx, val_idx, x_test, y_test) -> dict:
    """TF-IDF + logistic regression, C chosen on the validation split, scored on the test split."""
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform(texts[train_idx])
    x_val, x_tst = vectorizer.transform(texts[val_idx]), vectorizer.transform(x_test)
    scores = {}
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, labels[train_idx])
        scores[c] = (float((model.predict(x_val) == labels[val_idx]).mean()), model)
    best_c = max(scores, key=lambda c: scores[c][0])
    accuracy = float((scores[best_c][1].predict(x_tst) == y_test).mean())
    return {"accuracy": round(accuracy, 4), "C": best_c, "val_accuracy_by_C": {str(c): round(s[0], 4)
            for c, s in scores.items()}, "features": int(x_train.shape[1]),
            "seconds": round(time.perf_counter() - start, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. text.sequence_length=24")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="fmkeras-bench-text-")
    overrides = {"run_root": work, "export.enabled": False, "train.verbose": 0}
    if args.epochs:
        overrides["train.epochs"] = args.epochs
    overrides.update(dict(parse_override(item) for item in args.set))
    cfg = apply_overrides(load_recipe("text_debian"), overrides)

    source = load_text_source(cfg.data, cfg.text)
    # The split build_text_datasets makes for the Transformer run (same function, seed and fraction).
    train_idx, val_idx = split_indices(len(source.y_train), cfg.data.validation_split, cfg.data.seed)
    texts = np.asarray(source.x_train, dtype=str)
    baseline = tfidf_baseline(texts, source.y_train, train_idx, val_idx, np.asarray(source.x_test, dtype=str),
                              source.y_test)
    report = run_training(cfg)
    transformer = {"accuracy": report["test"]["accuracy"], "macro_f1": report["test"]["macro_f1"],
                   "params": report["params"], "vocabulary_size": report["vocabulary_size"],
                   "epochs": len(report["history"]["loss"]), "seconds": report["train_seconds"]}
    result = {
        "benchmark": "text_classification", "data": source.name, "classes": list(source.class_names),
        "num_train": int(len(train_idx)), "num_val": int(len(val_idx)), "num_test": int(len(source.y_test)),
        "transformer": transformer, "tfidf_logistic_regression": baseline,
        "accuracy_difference": round(transformer["accuracy"] - baseline["accuracy"], 4),
        "transformer_beats_or_matches_baseline": transformer["accuracy"] >= baseline["accuracy"],
        "run_dir": report["run_dir"],
    }
    print(json.dumps(result, indent=2))
    return 0 if result["transformer_beats_or_matches_baseline"] else 1


if __name__ == "__main__":
    sys.exit(main())
