"""A backbone's layers grouped into blocks, bottom to top, from the layer names.

Builders name layers by block the way keras.applications does: `conv3_block2_...`
(ResNet stage 3, residual block 2) or `block4_...` (VGG, the small CNNs). A block is the
finest named unit: for ResNets one residual block, for VGG/CNN one conv stage. Layers
before the first named block form the "stem"; unnamed layers after a block (e.g. ResNetV2's
`post_bn`) join the block before them.

Example:
    blocks = backbone_blocks(keras.applications.VGG16(include_top=False, weights=None))
    [name for name, _ in blocks][-2:]  # ['block4', 'block5']
"""
from __future__ import annotations

import re

import keras

BLOCK_NAME = re.compile(r"^(conv\d+_block\d+|block\d+)(?:_|$)")


def backbone_blocks(backbone: keras.Model) -> list:
    """[(block name, [layers])] bottom to top; input layers are left out."""
    blocks: dict = {}  # insertion-ordered: the first layer of a block fixes its position
    current = "stem"
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        match = BLOCK_NAME.match(layer.name)
        current = match.group(1) if match else current
        blocks.setdefault(current, []).append(layer)
    return list(blocks.items())
