"""LoRA transfer: low-rank adapters on a backbone's Dense/EinsumDense/Embedding layers, the rest frozen.

Keras 3's `layer.enable_lora(rank)` freezes the layer's kernel W and adds trainable A (in x rank) and
B (rank x out, zero-initialised), so the layer computes x(W + AB) and starts exactly where the
pretrained backbone was. Everything else in the backbone (biases, norms, convolutions, position
embeddings) is frozen too; only the adapters and the new head train.

Example:
    model = build_classifier(ModelConfig(backbone="vit", weights="backbone.keras", lora_rank=4), ...)
    trainable_parameter_count(model)   # a few % of the full fine-tuning count
"""
from __future__ import annotations

import keras
import numpy as np

from fmkeras.backbones.layer_tree import leaf_layers

LORA_LAYER_TYPES = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding)




def enable_backbone_lora(backbone: keras.Model, rank: int) -> dict:
    """Adds rank-`rank` adapters to every Dense/EinsumDense/Embedding leaf and freezes all other weights.

    Returns {"lora_layers": n, "frozen_layers": m}. Raises ValueError if the backbone has no such layer.
    """
    if rank < 1:
        raise ValueError(f"`rank` must be >= 1. Received: rank={rank}")
    adapted, frozen = 0, 0
    for layer in leaf_layers(backbone):
        if isinstance(layer, LORA_LAYER_TYPES) and layer.built:
            layer.enable_lora(rank)
            for variable in layer.trainable_variables:
                if "lora" not in variable.path.rsplit("/", 1)[-1]:
                    variable.trainable = False  # the bias stays as pretrained
            adapted += 1
        elif layer.weights:
            layer.trainable = False
            frozen += 1
    if not adapted:
        raise ValueError(f"backbone {backbone.name!r} has no Dense, EinsumDense or Embedding layer for LoRA "
                         f"(convolution-only backbones such as cnn cannot use model.lora_rank)")
    return {"lora_layers": adapted, "frozen_layers": frozen}


def trainable_parameter_count(model: keras.Model) -> int:
    """Number of scalars the optimizer updates."""
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))
