"""A TF-IDF logistic-regression text classifier, fitted to convergence, as a Keras model.

The wide & deep Transformer and a linear model on TF-IDF n-grams get different texts wrong, so
averaging them helps; but a linear layer trained with the network (Adam, minibatches, early
stopping) stays short of a converged L2 logistic regression. `fit_linear_text_classifier` therefore
fits the linear model on its own, full batch, on the training texts' sparse features, with the L2
strength picked on the validation split, and returns it as a Keras model that takes raw strings
(TextVectorization counts -> `SublinearTfIdf` -> Dense softmax), ready to be an ensemble member
(`text.linear_member`) and to be saved and exported like any other layer.

Features match scikit-learn's `TfidfVectorizer(sublinear_tf=True)`: 1 + log(count), smooth IDF
log((1 + n) / (1 + df)) + 1, rows L2-normalized; the out-of-vocabulary bucket is dropped.

Example:
    model, facts = fit_linear_text_classifier(TextConfig(), texts, labels, val_texts, val_labels, 8)
    model(tf.constant(["network file system client"]))
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from fmkeras.config import TextConfig
from fmkeras.errors import ConfigError
from fmkeras.transfer.text_classifier import build_wide_vectorizer

LINEAR_VECTORIZER_LAYER = "vectorize_linear"
STEPS = 600  # full-batch Adam steps on a convex loss; tests/transfer/test_linear_text.py checks the result
# against scikit-learn's LogisticRegression (probabilities within 0.02)
LEARNING_RATE = 0.05


@keras.saving.register_keras_serializable(package="fmkeras")
class SublinearTfIdf(keras.layers.Layer):
    """(N, V) n-gram counts -> (1 + log count) * idf, each row L2-normalized; column 0 (OOV) dropped."""

    def __init__(self, vocabulary_size: int, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.idf = self.add_weight(shape=(vocabulary_size,), initializer="ones", trainable=False, name="idf")

    def call(self, counts):
        counts = keras.ops.cast(counts, "float32")
        tf_part = keras.ops.where(counts > 0, 1.0 + keras.ops.log(keras.ops.maximum(counts, 1.0)), 0.0)
        weighted = tf_part * self.idf
        norm = keras.ops.sqrt(keras.ops.sum(keras.ops.square(weighted), axis=-1, keepdims=True))
        return weighted / keras.ops.maximum(norm, 1e-12)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size}


def _sparse_counts(vectorizer, texts, batch: int = 512) -> tf.SparseTensor:
    parts = [tf.sparse.from_dense(vectorizer(tf.constant(list(texts[i:i + batch]))))
             for i in range(0, len(texts), batch)]
    return tf.sparse.concat(0, parts) if len(parts) > 1 else parts[0]


def _features(counts: tf.SparseTensor, idf: np.ndarray) -> tf.SparseTensor:
    """The same transform as `SublinearTfIdf`, on sparse counts (the training set never goes dense)."""
    values = (1.0 + tf.math.log(tf.cast(counts.values, tf.float32))) * tf.gather(idf, counts.indices[:, 1])
    rows = counts.indices[:, 0]
    norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(values), rows, counts.dense_shape[0]))
    return tf.SparseTensor(counts.indices, values / tf.maximum(tf.gather(norms, rows), 1e-12), counts.dense_shape)


def _fit(features: tf.SparseTensor, labels: np.ndarray, num_classes: int, l2: float) -> tuple:
    """Minimizes mean cross-entropy + l2 * ||W||^2 full batch; returns (W, b) as numpy."""
    weights = tf.Variable(tf.zeros((int(features.dense_shape[1]), num_classes)))
    bias = tf.Variable(tf.zeros((num_classes,)))
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    y = tf.constant(labels, tf.int64)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = tf.sparse.sparse_dense_matmul(features, weights) + bias
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
            loss += l2 * tf.reduce_sum(tf.square(weights))
        optimizer.apply_gradients(zip(tape.gradient(loss, [weights, bias]), [weights, bias]))
        return loss

    for _ in range(STEPS):
        loss = step()
    return weights.numpy(), bias.numpy(), float(loss)


def fit_linear_text_classifier(cfg: TextConfig, train_texts, train_labels, val_texts, val_labels,
                               num_classes: int, name: str = "tfidf_logistic_regression") -> tuple:
    """(Keras model strings -> probabilities, facts). Fits one model per `cfg.linear_l2` value and keeps
    the one with the best validation accuracy (the first value if there is no validation split)."""
    if train_texts is None or not len(train_texts):
        raise ConfigError("`text.linear_member` fits on the training texts; none were given")
    start = time.perf_counter()
    vectorizer = build_wide_vectorizer(cfg, train_texts, output_mode="count", name=LINEAR_VECTORIZER_LAYER)
    counts = _sparse_counts(vectorizer, np.asarray(train_texts))
    document_frequency = np.bincount(counts.indices[:, 1].numpy(), minlength=int(counts.dense_shape[1]))
    idf = (np.log((1.0 + len(train_texts)) / (1.0 + document_frequency)) + 1.0).astype("float32")
    idf[0] = 0.0  # the OOV bucket: no word, no weight
    features = _features(counts, idf)
    has_val = val_texts is not None and len(val_texts) > 0
    val_features = _features(_sparse_counts(vectorizer, np.asarray(val_texts)), idf) if has_val else None
    fits, scores = {}, {}
    for l2 in cfg.linear_l2:
        fits[l2] = _fit(features, np.asarray(train_labels), num_classes, l2)
        if has_val:
            logits = tf.sparse.sparse_dense_matmul(val_features, fits[l2][0]) + fits[l2][1]
            scores[l2] = float((logits.numpy().argmax(-1) == np.asarray(val_labels)).mean())
    best = max(scores, key=scores.get) if scores else cfg.linear_l2[0]
    weights, bias, loss = fits[best]
    inputs = keras.Input(shape=(), dtype="string", name="text")
    tfidf = SublinearTfIdf(len(idf), name="sublinear_tf_idf")
    dense = keras.layers.Dense(num_classes, activation="softmax", name="predictions")
    outputs = dense(tfidf(vectorizer(inputs)))
    tfidf.idf.assign(idf)
    dense.set_weights([weights, bias])
    model = keras.Model(inputs, outputs, name=name)
    facts = {"l2": best, "val_accuracy_by_l2": {str(k): round(v, 4) for k, v in scores.items()},
             "features": int(len(idf)), "final_loss": round(loss, 5), "steps": STEPS,
             "seconds": round(time.perf_counter() - start, 2)}
    return model, facts
