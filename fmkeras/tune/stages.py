"""Two-stage fine-tuning for tuning trials: head first, then the top of the backbone at a lower LR.

A thin stand-in for `fmkeras.transfer.finetune.fit_stages` (issue 3) with the same config fields:
stage 1 runs `train.epochs` at `train.learning_rate` (backbone frozen if `finetune.freeze_backbone`);
stage 2 runs `finetune.epochs` at `finetune.learning_rate` with the top `finetune.unfreeze_layers`
backbone layers trainable (0 = all) and BatchNorm kept in inference mode if `finetune.freeze_batchnorm`.
Epochs are numbered continuously across stages so keras-tuner callbacks see one run.
"""
from __future__ import annotations

import os

import keras

from fmkeras.config import RunConfig
from fmkeras.train import fit

BACKBONE = "backbone"


def set_backbone_trainable(model: keras.Model, trainable: bool, top_layers: int = 0, freeze_batchnorm: bool = True):
    """Freezes the layer named "backbone", or unfreezes its top `top_layers` layers (0 = all)."""
    backbone = model.get_layer(BACKBONE)
    backbone.trainable = trainable
    if not trainable:
        return
    layers = backbone.layers
    for index, layer in enumerate(layers):
        below_top = bool(top_layers) and index < len(layers) - top_layers
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = not below_top and not (is_bn and freeze_batchnorm)


def fit_two_stages(model: keras.Model, data, cfg: RunConfig, run_dir: str, total_epochs: int = None,
                   initial_epoch: int = 0, extra_callbacks=()) -> dict:
    """Runs the stages of `cfg` (`total_epochs` overrides their sum, e.g. a Hyperband budget); returns history."""
    second = cfg.finetune.epochs
    total = total_epochs or cfg.train.epochs + second
    first = min(cfg.train.epochs, total) if second else total
    history: dict = {}
    if initial_epoch < first:
        set_backbone_trainable(model, not cfg.finetune.freeze_backbone)
        result = fit(model, data, cfg.train, os.path.join(run_dir, "stage1"), epochs=first,
                     initial_epoch=initial_epoch, extra_callbacks=extra_callbacks)
        history = result.history
    if total > first:
        f = cfg.finetune
        set_backbone_trainable(model, True, f.unfreeze_layers, f.freeze_batchnorm)
        result = fit(model, data, cfg.train, os.path.join(run_dir, "stage2"), epochs=total,
                     learning_rate=f.learning_rate, initial_epoch=max(first, initial_epoch),
                     extra_callbacks=extra_callbacks)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)
    return history
