"""Every layer inside a model, nested models and layers that hold sublayers (MultiHeadAttention's
EinsumDense projections) included.

Keras 3 has no public recursive walk: `Model.layers` stops at the first level and does not enter layers
that keep sublayers as attributes. This module is fmkeras' one use of the private `_flatten_layers`,
tested with Keras 3.12-3.15 (setup.cfg pins keras<3.16 for it); if a Keras release changes it, only
this file changes.

Example:
    norms = [l for l in all_layers(model) if isinstance(l, keras.layers.BatchNormalization)]
"""
from __future__ import annotations

import keras


def all_layers(model: keras.layers.Layer) -> list:
    """Every layer below `model` (not `model` itself), depth first."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def leaf_layers(model: keras.layers.Layer) -> list:
    """The layers below `model` that hold no sublayers of their own."""
    return [layer for layer in all_layers(model) if not list(layer._flatten_layers(include_self=False,
                                                                                    recursive=False))]
