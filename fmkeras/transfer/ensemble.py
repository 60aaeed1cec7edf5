"""Deep ensembles in one model: classifiers trained independently (each its own seed), averaged.

`average_classifiers` wraps already-trained classifiers that take the same input into one Keras
model whose output is the mean of their class probabilities, so `model.keras`, the exported
SavedModel and the server see a single classifier. Averaging members that differ only in their
random initialization and batch order cancels much of their seed-to-seed variance (text_debian:
single seeds 0.847-0.854 test accuracy; see benchmarks/RESULTS.md).

Example:
    model = average_classifiers([member_a, member_b, member_c])
    model(tf.constant(["network file system client"]))  # mean of the three members' probabilities
"""
from __future__ import annotations

import keras

from fmkeras.errors import ConfigError

MEMBER_PREFIX = "member_"
OUTPUT_LAYER = "ensemble_mean"


def member_name(index: int) -> str:
    return f"{MEMBER_PREFIX}{index}"


@keras.saving.register_keras_serializable(package="fmkeras")
class WeightedMean(keras.layers.Layer):
    """sum_i weights[i] * inputs[i] for a list of same-shaped inputs (weights sum to 1)."""

    def __init__(self, weights: list, **kwargs):
        super().__init__(**kwargs)
        self.member_weights = [float(w) for w in weights]

    def call(self, inputs):
        return sum(w * x for w, x in zip(self.member_weights, inputs))

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "weights": self.member_weights}


def average_classifiers(members: list, name: str = "ensemble", weights: list = None) -> keras.Model:
    """One model: input -> each member (renamed member_0, member_1, ...) -> mean of probabilities
    (weighted by `weights`, which must sum to 1, if given)."""
    if weights is not None and (len(weights) != len(members) or abs(sum(weights) - 1) > 1e-6
                                or min(weights) < 0):
        raise ConfigError(f"ensemble weights must be one per member, >= 0, summing to 1. Received: {weights}")
    if len(members) < 2:
        raise ConfigError(f"an ensemble needs at least two members. Received: {len(members)}")
    first = members[0].inputs[0]
    for i, member in enumerate(members):
        if tuple(member.inputs[0].shape[1:]) != tuple(first.shape[1:]) or member.inputs[0].dtype != first.dtype:
            raise ConfigError(f"ensemble member {i} takes {member.inputs[0].dtype} {tuple(member.inputs[0].shape)}; "
                              f"member 0 takes {first.dtype} {tuple(first.shape)}")
        member.name = member_name(i)
    inputs = keras.Input(shape=tuple(first.shape[1:]), dtype=first.dtype, name=members[0].layers[0].name)
    probabilities = [member(inputs) for member in members]
    outputs = (keras.layers.Average(name=OUTPUT_LAYER)(probabilities) if weights is None
               else WeightedMean(weights, name=OUTPUT_LAYER)(probabilities))
    return keras.Model(inputs, outputs, name=name)


def first_member(model: keras.Model) -> keras.Model:
    """The ensemble's member 0, or `model` itself if it is not an ensemble (for layer lookups)."""
    names = {layer.name for layer in model.layers}
    return model.get_layer(member_name(0)) if member_name(0) in names else model
