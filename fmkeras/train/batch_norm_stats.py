"""Precise BatchNorm statistics: re-estimate every trainable BatchNorm layer's moving mean and variance with the
final weights, from training batches, after a fit.

A BatchNorm layer's moving statistics are an exponential average (momentum 0.99: about the last 100 steps) of
batch statistics taken while the weights were still moving. In a short run - one-cycle's high learning rate, a
few hundred steps - they describe earlier weights than the ones kept, and inference is off: `cnn_fashion` after
one epoch scored 0.83 on its training batches and 0.31 on the test split. Averaging the batch statistics of N
batches seen by the final weights fixes that ("precise BN", Wu & Johnson 2021, "Rethinking 'Batch' in
BatchNorm"). Frozen layers (trainable=False, e.g. a pretrained backbone kept as it is) keep their statistics.

Example:
    recompute_batch_norm_statistics(model, data.train, num_batches=50)
"""
from __future__ import annotations

import keras


def trainable_batch_norm_layers(model: keras.Model) -> list:
    """Every trainable BatchNormalization layer (subclasses included) under `model`, nested models included:
    the layers whose statistics training updates."""
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.trainable:
                found.append(layer)
            continue
        stack.extend(getattr(layer, "layers", None) or [])
    return found


def recompute_batch_norm_statistics(model: keras.Model, dataset, num_batches: int) -> int:
    """Sets each trainable BatchNorm layer's moving mean/variance to the average of its batch statistics over
    the first `num_batches` batches of `dataset` ((x, y) or x elements), the weights unchanged. Returns the number
    of batches used (0 when the model has no such layer or num_batches is 0)."""
    layers = trainable_batch_norm_layers(model)
    if not layers or num_batches <= 0:
        return 0
    momenta = [layer.momentum for layer in layers]
    used = 0
    try:
        for batch in dataset.take(num_batches):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            used += 1
            for layer in layers:  # moving = (1 - 1/k) moving + (1/k) batch: the running mean of k batches
                layer.momentum = 1.0 - 1.0 / used
            model(x, training=True)  # eager: each layer reads its momentum as it updates its statistics
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return used
