"""fmkeras/transfer/linear_text.py: scikit-learn's sublinear TF-IDF, a converged L2 logistic regression, in Keras."""
import numpy as np
import pytest
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from fmkeras.config import RunConfig, TextConfig, validate
from fmkeras.errors import ConfigError
from fmkeras.transfer.linear_text import LINEAR_VECTORIZER_LAYER, fit_linear_text_classifier
from fmkeras.model_files.safe_load import load_keras_model

WORDS = [f"w{i}" for i in range(24)]


def corpus(n: int, seed: int) -> tuple:
    """Texts of 3 classes: each class prefers its own third of the words (with repeats, so counts > 1)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    texts = []
    for y in labels:
        own = WORDS[8 * y: 8 * y + 8]
        words = [rng.choice(own) if rng.random() < 0.6 else rng.choice(WORDS) for _ in range(rng.integers(3, 9))]
        texts.append(" ".join(words))
    return np.asarray(texts), labels


def sklearn_vectorizer(texts):
    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), tokenizer=str.split, token_pattern=None).fit(texts)


def test_features_equal_scikit_learns_sublinear_tf_idf():
    texts, labels = corpus(60, 0)
    model, _ = fit_linear_text_classifier(TextConfig(linear_l2=(1e-3,)), texts, labels, None, None, 3)
    vectorizer = model.get_layer(LINEAR_VECTORIZER_LAYER)
    ours = model.get_layer("sublinear_tf_idf")(vectorizer(tf.constant(texts))).numpy()
    reference = sklearn_vectorizer(texts)
    theirs = reference.transform(texts).toarray()
    columns = [reference.vocabulary_[token] for token in vectorizer.get_vocabulary()[1:]]  # 0 is OOV
    np.testing.assert_allclose(ours[:, 1:], theirs[:, columns], atol=1e-5)
    assert np.all(ours[:, 0] == 0)


def test_fit_reaches_scikit_learns_logistic_regression():
    texts, labels = corpus(240, 1)
    l2 = 1e-3
    model, facts = fit_linear_text_classifier(TextConfig(linear_l2=(l2,)), texts, labels, None, None, 3)
    reference = sklearn_vectorizer(texts)
    # sklearn minimizes C * sum(losses) + ||W||^2 / 2 = n * C * (mean loss + ||W||^2 / (2 n C))
    lr = LogisticRegression(C=1 / (2 * l2 * len(texts)), max_iter=5000, tol=1e-8).fit(reference.transform(texts), labels)
    held_out, _ = corpus(50, 2)
    np.testing.assert_allclose(model(tf.constant(held_out)).numpy(), lr.predict_proba(reference.transform(held_out)),
                               atol=0.02)
    assert facts["l2"] == l2 and facts["steps"] > 0


def test_l2_is_picked_on_validation_and_the_model_round_trips(tmp_path):
    texts, labels = corpus(200, 3)
    val_texts, val_labels = corpus(100, 4)
    model, facts = fit_linear_text_classifier(TextConfig(linear_l2=(1e-6, 1e-1)), texts, labels, val_texts,
                                              val_labels, 3)
    scores = facts["val_accuracy_by_l2"]
    assert set(scores) == {"1e-06", "0.1"} and scores[str(facts["l2"])] == max(scores.values())
    path = str(tmp_path / "linear.keras")
    model.save(path)
    loaded = load_keras_model(path)  # fmkeras' inspected safe loader accepts the registered layers
    np.testing.assert_allclose(loaded(tf.constant(val_texts)).numpy(), model(tf.constant(val_texts)).numpy(),
                               atol=1e-6)


def test_bad_linear_settings_are_refused():
    with pytest.raises(ConfigError, match="text.linear_l2"):
        validate(RunConfig(text=TextConfig(linear_l2=())))
    with pytest.raises(ConfigError, match="text.linear_weight"):
        validate(RunConfig(text=TextConfig(linear_weight=0.0)))
