"""Copies the reference EfficientNet-Lite0 weights (PyTorch state dict) into fmkeras' Keras backbone.

The state dict uses the names of the widely used PyTorch port (`_conv_stem`, `_blocks.N._expand_conv`,
`_bn0/_bn1/_bn2`, `_conv_head`, `_fc`); each maps to one Keras layer of
fmkeras.backbones.efficientnet_lite. Every Keras weight must be filled and every tensor used (but
BatchNorm's step counter, and the classifier for a model without its top), or the conversion fails.
"""
from __future__ import annotations

import numpy as np

from fmkeras.errors import WeightsError
from fmkeras.model_files.torch_file import read_state_dict

_BLOCK_PARTS = {"_expand_conv": "expand_conv", "_bn0": "expand_bn", "_depthwise_conv": "dwconv",
                "_bn1": "dw_bn", "_project_conv": "project_conv", "_bn2": "project_bn"}
_TOP_PARTS = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "head_conv", "_bn1": "head_bn",
              "_fc": "predictions"}


def keras_layer_name(torch_module: str) -> str:
    """`_blocks.3._bn1` -> `block3_dw_bn`; `_conv_stem` -> `stem_conv`."""
    parts = torch_module.split(".")
    if parts[0] == "_blocks" and len(parts) == 3 and parts[2] in _BLOCK_PARTS:
        return f"block{int(parts[1])}_{_BLOCK_PARTS[parts[2]]}"
    if len(parts) == 1 and parts[0] in _TOP_PARTS:
        return _TOP_PARTS[parts[0]]
    raise WeightsError(f"unexpected tensor group {torch_module!r} in an EfficientNet-Lite checkpoint")


def _layer_weights(layer, tensors: dict) -> list:
    """The Keras weight list of `layer` from its PyTorch tensors (kernels transposed to HWIO)."""
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        return [tensors["weight"], tensors["bias"], tensors["running_mean"], tensors["running_var"]]
    if kind == "DepthwiseConv2D":
        return [np.transpose(tensors["weight"], (2, 3, 0, 1))]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if kind == "Conv2D":
        return [np.transpose(tensors["weight"], (2, 3, 1, 0))]  # (O, I, kh, kw) -> (kh, kw, I, O)
    if kind == "Dense":
        return [tensors["weight"].T, tensors["bias"]]
    raise WeightsError(f"layer {layer.name} ({kind}) has weights but no PyTorch counterpart")


def convert_lite0(source_path: str, model) -> None:
    """Fills `model` (built by build_efficientnet_lite0, with or without its top) from `source_path`."""
    groups: dict = {}
    for name, value in read_state_dict(source_path).items():
        module, _, tensor = name.rpartition(".")
        if tensor != "num_batches_tracked":
            groups.setdefault(module, {})[tensor] = value
    has_top = any(layer.name == "predictions" for layer in model.layers)
    if not has_top:
        groups.pop("_fc", None)
    filled = set()
    for module, tensors in groups.items():
        layer_name = keras_layer_name(module)
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            raise WeightsError(f"{source_path}: {module} has no layer {layer_name!r} in {model.name}") from None
        values = _layer_weights(layer, tensors)
        shapes = [tuple(w.shape) for w in layer.get_weights()]
        if shapes != [v.shape for v in values]:
            raise WeightsError(f"{source_path}: {module} shapes {[v.shape for v in values]} do not fit layer "
                               f"{layer_name} {shapes}")
        layer.set_weights(values)
        filled.add(layer_name)
    unfilled = [layer.name for layer in model.layers if layer.weights and layer.name not in filled]
    if unfilled:
        raise WeightsError(f"{source_path} has no weights for layers {', '.join(unfilled[:5])} of {model.name}")
