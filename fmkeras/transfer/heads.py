"""A classifier = input adapters + backbone preprocessing + backbone + a new head.

The model takes float32 pixels in [0, 255] at the data's size and channels, so the
exported graph only has to decode and resize; everything else lives inside the model.

Example:
    model = build_classifier(ModelConfig(backbone="cnn"), image_shape=(28, 28, 1), num_classes=10)
"""
from __future__ import annotations

import keras

from fmkeras.backbones import get_backbone
from fmkeras.config import HeadConfig, ModelConfig
from fmkeras.errors import ConfigError
from fmkeras.transfer.layers import BackbonePreprocessing, ToChannels, TwoClassProbabilities
from fmkeras.transfer.lora import enable_backbone_lora
from fmkeras.transfer.weights import build_backbone

BACKBONE_LAYER = "backbone"
MULTI_LABEL_OUTPUT = "multi_label_probabilities"  # the sigmoid output layer of `head.multi_label` models


def backbone_input_shape(cfg: ModelConfig, image_shape: tuple) -> tuple:
    """(H, W, C) the backbone runs at: config size, else the data size (raised to its minimum)."""
    spec = get_backbone(cfg.backbone)
    size = tuple(cfg.input_size) if cfg.input_size else tuple(
        max(a, b) for a, b in zip(image_shape[:2], spec.min_input_size))
    return (*size, spec.channels or image_shape[2])


def head_features(features, head: HeadConfig):
    """The head up to its output layer: pooling of (B, H, W, C) maps or (B, T, C) token sequences
    (mask-aware), then the optional Dense/Dropout stack."""
    x = features
    if len(x.shape) == 4:
        pool = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
                "flatten": keras.layers.Flatten}[head.pooling]
        x = pool(name=f"head_{head.pooling}_pool")(x)
    elif len(x.shape) == 3:  # token sequences (ViT without class token, text Transformers); mask-aware
        pool = {"avg": keras.layers.GlobalAveragePooling1D, "max": keras.layers.GlobalMaxPooling1D,
                "flatten": keras.layers.Flatten}[head.pooling]
        x = pool(name=f"head_{head.pooling}_pool")(x)
    for i, units in enumerate(head.dense_units, start=1):
        x = keras.layers.Dense(units, activation=head.activation, name=f"head_dense{i}")(x)
        if head.dropout:
            x = keras.layers.Dropout(head.dropout, name=f"head_dropout{i}")(x)
    if head.dropout and not head.dense_units:
        x = keras.layers.Dropout(head.dropout, name="head_dropout")(x)
    return x


def add_head(features, num_classes: int, head: HeadConfig):
    """Pooling -> optional Dense/Dropout stack -> softmax predictions; with `head.binary` one sigmoid shown as
    two probabilities; with `head.multi_label` `num_classes` independent sigmoids (per-class probabilities)."""
    x = head_features(features, head)
    if head.multi_label:
        return keras.layers.Dense(num_classes, activation="sigmoid", name=MULTI_LABEL_OUTPUT, dtype="float32")(x)
    if head.binary:
        if num_classes != 2:
            raise ConfigError(f"`model.head.binary` needs exactly 2 classes. Received: {num_classes} classes")
        p = keras.layers.Dense(1, activation="sigmoid", name="head_sigmoid", dtype="float32")(x)
        # Sparse cross-entropy on [1 - p, p] equals binary cross-entropy on p.
        return TwoClassProbabilities(name="predictions", dtype="float32")(p)
    return keras.layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)


def build_classifier(cfg: ModelConfig, image_shape: tuple, num_classes: int) -> keras.Model:
    """Builds input adapters -> preprocessing -> backbone (named "backbone") -> head."""
    spec = get_backbone(cfg.backbone)
    if spec.modality != "image":
        raise ConfigError(f"backbone {cfg.backbone!r} takes {spec.modality}, not images; use a "
                          f"{spec.modality} data source (e.g. data.source=text:FILE.csv)")
    shape = backbone_input_shape(cfg, image_shape)
    backbone = build_backbone(spec, shape, cfg.weights, cfg.backbone_options)
    backbone.name = BACKBONE_LAYER
    if cfg.lora_rank:
        enable_backbone_lora(backbone, cfg.lora_rank)
    inputs = keras.Input(image_shape, name="pixels", dtype="float32")
    x = inputs
    if tuple(shape[:2]) != tuple(image_shape[:2]):
        x = keras.layers.Resizing(*shape[:2], interpolation="bilinear", name="resize")(x)
    if shape[2] != image_shape[2]:
        x = ToChannels(shape[2], name="to_channels")(x)
    x = BackbonePreprocessing(cfg.backbone, name="preprocess")(x)
    outputs = add_head(backbone(x), num_classes, cfg.head)
    return keras.Model(inputs, outputs, name=f"{cfg.backbone}_classifier")
