"""A text classifier = TextVectorization (in the model) + a text backbone + the shared head.

The model takes raw strings (N,) and returns class probabilities, so training, `model.keras` and
the exported SavedModel all tokenize the same way. The vocabulary is learned from the training
split only.

Example:
    model = build_text_classifier(ModelConfig(backbone="text_transformer"), TextConfig(), texts, 8)
    model(tf.constant(["network file system client"]))
"""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from fmkeras.backbones import get_backbone
from fmkeras.config import HeadConfig, ModelConfig, TextConfig
from fmkeras.errors import ConfigError
from fmkeras.transfer.heads import BACKBONE_LAYER, add_head, head_features
from fmkeras.transfer.lora import enable_backbone_lora
from fmkeras.transfer.weights import build_backbone

VECTORIZER_LAYER = "vectorize"
WIDE_VECTORIZER_LAYER = "vectorize_wide"
OOV_ID = 1  # TextVectorization's id for out-of-vocabulary tokens


@keras.saving.register_keras_serializable(package="fmkeras")
class TokenDropout(keras.layers.Layer):
    """While training, replaces each real token id with the OOV id with probability `rate` (word
    dropout: the model cannot lean on any single word; a strong regularizer for short texts)."""

    def __init__(self, rate: float, seed: int = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids, training=False):
        if not training or not self.rate:
            return ids
        drop = keras.random.uniform(keras.ops.shape(ids), seed=self.seed_generator) < self.rate
        return keras.ops.where(keras.ops.logical_and(drop, ids > OOV_ID), keras.ops.ones_like(ids) * OOV_ID, ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


# Keras' "lower_and_strip_punctuation" pattern. Stripping glues words together ("real-time" ->
# "realtime", "X11/GTK" -> "x11gtk"); replacing punctuation with spaces keeps them apart.
PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'


@keras.saving.register_keras_serializable(package="fmkeras")
def lower_and_split_punctuation(texts):
    """Lowercases and turns every punctuation character into a space (`text.standardize` choice)."""
    return tf.strings.regex_replace(tf.strings.lower(texts), PUNCTUATION, " ")


def _standardize(cfg: TextConfig):
    if cfg.standardize == "lower_and_split_punctuation":
        return lower_and_split_punctuation
    return None if cfg.standardize == "none" else cfg.standardize


def read_vocabulary(path: str) -> list:
    """Tokens of a vocabulary file, one a line (as `write_vocabulary` writes them)."""
    if not os.path.isfile(path):
        raise ConfigError(f"`text.vocabulary` file not found: {path}")
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def write_vocabulary(vectorizer: keras.layers.TextVectorization, path: str) -> str:
    """Writes the vectorizer's vocabulary without the padding and OOV entries (ids 0 and 1)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(f"{token}\n" for token in vectorizer.get_vocabulary()[2:])
    return path


def build_vectorizer(cfg: TextConfig, train_texts) -> keras.layers.TextVectorization:
    """A TextVectorization layer with `cfg.vocabulary`, else one adapted on `train_texts` (array of str)."""
    vectorizer = keras.layers.TextVectorization(max_tokens=cfg.max_tokens, standardize=_standardize(cfg),
                                                output_sequence_length=cfg.sequence_length,
                                                ngrams=cfg.ngrams if cfg.ngrams > 1 else None,
                                                name=VECTORIZER_LAYER)
    if cfg.vocabulary:
        vectorizer.set_vocabulary(read_vocabulary(cfg.vocabulary))
    else:
        vectorizer.adapt(tf.data.Dataset.from_tensor_slices(tf.constant(list(train_texts))).batch(1024))
    return vectorizer


def build_wide_vectorizer(cfg: TextConfig, train_texts, output_mode: str = None,
                          name: str = WIDE_VECTORIZER_LAYER) -> keras.layers.TextVectorization:
    """A bag-of-n-grams layer over word 1..`cfg.wide_ngrams`-grams, at most `cfg.wide_max_tokens`, vocabulary
    (and IDF weights) adapted on `train_texts`: the wide branch's (`output_mode` = `cfg.wide`, "tf_idf") or,
    e.g., the linear member's n-gram counts (`output_mode="count"`)."""
    if train_texts is None:
        raise ConfigError(f"`text.wide={cfg.wide}` learns its n-gram vocabulary from the training texts; "
                          "none were given (set text.wide=none to build from a vocabulary file alone)")
    vectorizer = keras.layers.TextVectorization(max_tokens=cfg.wide_max_tokens, standardize=_standardize(cfg),
                                                ngrams=cfg.wide_ngrams if cfg.wide_ngrams > 1 else None,
                                                output_mode=output_mode or cfg.wide, name=name)
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(tf.constant(list(train_texts))).batch(1024))
    return vectorizer


def build_text_classifier(cfg: ModelConfig, text: TextConfig, train_texts, num_classes: int) -> keras.Model:
    """Builds strings -> TextVectorization -> backbone (named "backbone") -> head; with `text.wide`,
    also strings -> TF-IDF n-grams, joined with the pooled backbone features at the output layer."""
    spec = get_backbone(cfg.backbone)
    if spec.modality != "text":
        raise ConfigError(f"text sources need a text backbone (e.g. text_transformer). "
                          f"Received: model.backbone={cfg.backbone!r}, which takes {spec.modality}")
    vectorizer = build_vectorizer(text, train_texts)
    options = {"vocab_size": vectorizer.vocabulary_size(), **cfg.backbone_options}
    backbone = build_backbone(spec, (text.sequence_length,), cfg.weights, options)
    backbone.name = BACKBONE_LAYER
    if cfg.lora_rank:
        enable_backbone_lora(backbone, cfg.lora_rank)
    inputs = keras.Input(shape=(), dtype="string", name="text")
    ids = vectorizer(inputs)
    if text.token_dropout:
        ids = TokenDropout(text.token_dropout, name="token_dropout")(ids)
    features = backbone(ids)
    head = cfg.head
    if text.wide != "none":
        # Wide & deep: the output layer sees the bag of n-grams next to the Transformer's features, so
        # it can weigh every word and bigram directly (what TF-IDF + logistic regression does) while
        # the Transformer adds context. Head dropout regularizes the deep features only: dropping
        # entries of a sparse n-gram vector mostly deletes the few words a short text has. The TF-IDF
        # values stay unnormalized (about 2-9 per n-gram): L2-normalized ones are ~20x smaller and
        # the linear weights on them then learn too slowly at a Transformer's learning rate
        # (text_debian test accuracy, single runs: L2-normalized 0.827, normalized x30 0.842, as is 0.847).
        wide = build_wide_vectorizer(text, train_texts)(inputs)
        features = keras.layers.Concatenate(name="wide_and_deep")([head_features(features, head), wide])
        head = HeadConfig(binary=head.binary)
    outputs = add_head(features, num_classes, head)
    return keras.Model(inputs, outputs, name=f"{cfg.backbone}_text_classifier")


def split_vectorizers(model: keras.Model) -> tuple:
    """(vectorizers, core): the classifier's `TextVectorization` layers in input order, and a model that
    shares every other layer (and weight) and takes their outputs. Training the core on pre-vectorized
    batches trains `model`; this is how text runs train under MirroredStrategy, whose Keras `fit`
    cannot pass string tensors between replicas (tensorflow/tensorflow#80951: AddN over strings)."""
    vectorizers = [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]
    if not vectorizers:
        raise ConfigError(f"model {model.name!r} has no TextVectorization layer to split off")
    return vectorizers, keras.Model([v.output for v in vectorizers], model.output, name=f"{model.name}_core")
