"""A text classifier = TextVectorization (in the model) + a text backbone + the shared head.

The model takes raw strings (N,) and returns class probabilities, so training, `model.keras` and
the exported SavedModel all tokenize the same way. The vocabulary is learned from the training
split only.

Example:
    model = build_text_classifier(ModelConfig(backbone="text_transformer"), TextConfig(), texts, 8)
    model(tf.constant(["network file system client"]))
"""
from __future__ import annotations

import keras
import tensorflow as tf

from fmkeras.backbones import get_backbone
from fmkeras.config import ModelConfig, TextConfig
from fmkeras.errors import ConfigError
from fmkeras.transfer.heads import BACKBONE_LAYER, add_head
from fmkeras.transfer.lora import enable_backbone_lora
from fmkeras.transfer.weights import build_backbone

VECTORIZER_LAYER = "vectorize"


def build_vectorizer(cfg: TextConfig, train_texts) -> keras.layers.TextVectorization:
    """A TextVectorization layer whose vocabulary is adapted on `train_texts` (array of str)."""
    standardize = None if cfg.standardize == "none" else cfg.standardize
    vectorizer = keras.layers.TextVectorization(max_tokens=cfg.max_tokens, standardize=standardize,
                                                output_sequence_length=cfg.sequence_length,
                                                ngrams=cfg.ngrams if cfg.ngrams > 1 else None,
                                                name=VECTORIZER_LAYER)
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(tf.constant(list(train_texts))).batch(1024))
    return vectorizer


def build_text_classifier(cfg: ModelConfig, text: TextConfig, train_texts, num_classes: int) -> keras.Model:
    """Builds strings -> TextVectorization -> backbone (named "backbone") -> head."""
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
    outputs = add_head(backbone(vectorizer(inputs)), num_classes, cfg.head)
    return keras.Model(inputs, outputs, name=f"{cfg.backbone}_text_classifier")
