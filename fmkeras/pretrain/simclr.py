"""SimCLR (Chen et al. 2020): contrastive pretraining of a backbone on unlabeled images.

Two random views of each image go through encoder (input adapters -> backbone preprocessing ->
backbone -> global average pooling) and a projection MLP; the NT-Xent loss pulls each view
toward its partner and away from the other 2B - 2 views of the batch. The backbone inside the
encoder is what transfer learning later reuses; the projection head is thrown away.

Example:
    encoder = build_encoder(cfg.model, (28, 28, 1))
    model = SimCLR(encoder, build_projection_head(encoder.output_shape[-1], (128, 64)), temperature=0.2)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(view_pairs_dataset, epochs=5)
"""
from __future__ import annotations

import keras
import tensorflow as tf

from fmkeras.backbones import get_backbone
from fmkeras.config import ModelConfig
from fmkeras.transfer.heads import BACKBONE_LAYER, backbone_input_shape
from fmkeras.transfer.layers import BackbonePreprocessing, ToChannels
from fmkeras.transfer.weights import build_backbone


def nt_xent_loss(z1: tf.Tensor, z2: tf.Tensor, temperature: float) -> tf.Tensor:
    """Normalised-temperature cross entropy over the 2B views of a batch (mean over all 2B anchors).

    Row i of z1 and row i of z2 are a positive pair; every other row of either is a negative.
    loss_i = -log(exp(sim(i, pos) / T) / sum_{k != i} exp(sim(i, k) / T)), sim = cosine similarity.
    """
    z = tf.math.l2_normalize(tf.concat([z1, z2], axis=0), axis=1)
    batch = tf.shape(z1)[0]
    logits = tf.matmul(z, z, transpose_b=True) / temperature
    # A view is never its own negative: push self-similarity out of the softmax.
    logits = logits - tf.eye(2 * batch, dtype=logits.dtype) * 1e9
    positives = tf.concat([tf.range(batch, 2 * batch), tf.range(batch)], axis=0)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positives, logits=logits)
    return tf.reduce_mean(losses)


POOLING = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
           "flatten": keras.layers.Flatten}


def build_encoder(cfg: ModelConfig, image_shape: tuple, pooling: str = "avg") -> keras.Model:
    """Pixels in [0, 255] -> the same adapters and preprocessing as the classifier -> backbone -> pooled features.

    pooling: how a feature map becomes the feature vector (avg | max | flatten); "flatten" keeps
    where each feature fired, which a classifier with `model.head.pooling=flatten` then uses.

    The backbone layer is named "backbone" and built exactly as `build_classifier` builds it, so
    its saved weights load into a classifier of the same `model` config.
    """
    shape = backbone_input_shape(cfg, image_shape)
    backbone = build_backbone(get_backbone(cfg.backbone), shape, cfg.weights, cfg.backbone_options)
    backbone.name = BACKBONE_LAYER
    inputs = keras.Input(image_shape, name="pixels", dtype="float32")
    x = inputs
    if tuple(shape[:2]) != tuple(image_shape[:2]):
        x = keras.layers.Resizing(*shape[:2], interpolation="bilinear", name="resize")(x)
    if shape[2] != image_shape[2]:
        x = ToChannels(shape[2], name="to_channels")(x)
    x = BackbonePreprocessing(cfg.backbone, name="preprocess")(x)
    features = backbone(x)
    if len(features.shape) == 4:
        features = POOLING[pooling](name="pool")(features)
    return keras.Model(inputs, features, name=f"{cfg.backbone}_encoder")


def build_projection_head(input_dim: int, units: tuple, batch_norm: bool = False) -> keras.Model:
    """MLP: Dense(ReLU) for every hidden width, then a linear Dense of the last width.

    With `batch_norm`, every hidden layer is Dense -> BatchNormalization -> ReLU (SimCLR's head).
    """
    inputs = keras.Input((input_dim,), name="features")
    x = inputs
    for i, width in enumerate(units[:-1], start=1):
        if batch_norm:
            x = keras.layers.Dense(width, use_bias=False, name=f"projection_dense{i}")(x)
            x = keras.layers.BatchNormalization(name=f"projection_bn{i}")(x)
            x = keras.layers.ReLU(name=f"projection_relu{i}")(x)
        else:
            x = keras.layers.Dense(width, activation="relu", name=f"projection_dense{i}")(x)
    outputs = keras.layers.Dense(units[-1], name="projection")(x)
    return keras.Model(inputs, outputs, name="projection_head")


class SimCLR(keras.Model):
    """Trains `encoder` + `projection_head` with NT-Xent on batches of (view1, view2)."""

    def __init__(self, encoder: keras.Model, projection_head: keras.Model, temperature: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.projection_head = projection_head
        self.temperature = temperature
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def _projections(self, view1, view2, training):
        # One forward pass over both views: half the kernel launches, and BatchNorm sees all 2B images.
        z = self.projection_head(self.encoder(tf.concat([view1, view2], axis=0), training=training),
                                 training=training)
        return tf.split(z, 2, axis=0)

    def _update_metrics(self, z1, z2, loss):
        # Contrastive accuracy: how often a view's most similar other view is its partner.
        a, b = tf.math.l2_normalize(z1, axis=1), tf.math.l2_normalize(z2, axis=1)
        hits = tf.argmax(tf.matmul(a, b, transpose_b=True), axis=1) == tf.range(tf.shape(a)[0], dtype=tf.int64)
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(tf.reduce_mean(tf.cast(hits, tf.float32)))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        view1, view2 = data
        with tf.GradientTape() as tape:
            z1, z2 = self._projections(view1, view2, training=True)
            loss = nt_xent_loss(z1, z2, self.temperature)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._update_metrics(z1, z2, loss)

    def test_step(self, data):
        view1, view2 = data
        z1, z2 = self._projections(view1, view2, training=False)
        return self._update_metrics(z1, z2, nt_xent_loss(z1, z2, self.temperature))
