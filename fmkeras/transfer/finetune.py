"""Staged fine-tuning: train the new head on a frozen backbone, then unfreeze its top at a lower LR.

Stage 1 ("head"): `train.epochs` at `train.learning_rate`; the backbone is frozen when
`finetune.freeze_backbone` (a frozen Keras 3 BatchNormalization runs in inference mode, so
its moving statistics stay as loaded). Stage 2 ("finetune", only if `finetune.epochs` > 0):
the top `unfreeze_layers` layers or `unfreeze_blocks` blocks (both 0 = whole backbone)
become trainable, BatchNorm stays frozen while `freeze_batchnorm`, and training continues at
`finetune.learning_rate`; with `lr_decay_per_block` < 1 each lower unfrozen block learns at
that factor times the LR of the block above it (the head and the top block get the full LR).

Stage 2 writes its checkpoints, logs and step checkpoints (resume/) under `<run_dir>/finetune/`; `history.csv`
in the run directory holds both stages (column `stage`).

Example:
    cfg = apply_overrides(load_recipe("resnet50v2_transfer"), {"finetune.epochs": 2})
    result = fit_stages(model, data, cfg, run_dir)
"""
from __future__ import annotations

import csv
import dataclasses
import os

import keras
import numpy as np

from fmkeras.backbones.blocks import backbone_blocks
from fmkeras.backbones.layer_tree import all_layers
from fmkeras.config import RunConfig
from fmkeras.errors import ConfigError
from fmkeras.train.lr_multipliers import with_lr_multipliers
from fmkeras.train.optimizers import build_optimizer
from fmkeras.train.schedules import build_schedule
from fmkeras.train.trainer import TrainResult, compile_model, fit, has_soft_labels, steps_per_epoch
from fmkeras.transfer.heads import BACKBONE_LAYER

FINETUNE_DIR = "finetune"


@dataclasses.dataclass
class StagedResult(TrainResult):
    """A TrainResult over both stages (history concatenated) plus one summary per stage."""
    stages: list = dataclasses.field(default_factory=list)


def _backbone(model: keras.Model) -> keras.Model:
    try:
        return model.get_layer(BACKBONE_LAYER)
    except ValueError:
        raise ConfigError(f"model {model.name!r} has no layer named {BACKBONE_LAYER!r} to freeze or unfreeze") from None


def freeze_backbone(model: keras.Model) -> keras.Model:
    """Makes the layer named "backbone" non-trainable (its BatchNorm layers then run in inference mode)."""
    backbone = _backbone(model)
    backbone.trainable = False
    return backbone


def unfreeze_top(model: keras.Model, layers: int = 0, blocks: int = 0, freeze_batchnorm: bool = True) -> list:
    """Makes only the top `layers` layers or `blocks` blocks of the backbone trainable.

    Both 0 unfreezes the whole backbone. BatchNormalization layers stay non-trainable
    (inference mode, fixed moving statistics) when `freeze_batchnorm`.
    Returns the names of the backbone layers left trainable.
    """
    _check_unfreeze(model, layers, blocks)
    backbone = _backbone(model)
    grouped = backbone_blocks(backbone)
    ordered = [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]
    if blocks:
        top = [layer for _, group in grouped[-blocks:] for layer in group]
    else:
        top = ordered[-layers:] if layers else ordered
    top_ids = {id(layer) for layer in top}
    backbone.trainable = True
    for layer in ordered:
        layer.trainable = id(layer) in top_ids
    if freeze_batchnorm:
        for layer in all_layers(backbone):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    return [layer.name for layer in ordered if layer.trainable]


def _check_unfreeze(model: keras.Model, layers: int, blocks: int):
    """Raises ConfigError when the requested layers/blocks are not in the backbone."""
    if layers and blocks:
        raise ConfigError(f"set finetune.unfreeze_layers or finetune.unfreeze_blocks, not both. "
                          f"Received: unfreeze_layers={layers}, unfreeze_blocks={blocks}")
    backbone = _backbone(model)
    grouped = backbone_blocks(backbone)
    ordered = [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]
    if blocks > len(grouped):
        raise ConfigError(f"finetune.unfreeze_blocks={blocks} but backbone has {len(grouped)} blocks: "
                          f"{', '.join(name for name, _ in grouped)}")
    if layers > len(ordered):
        raise ConfigError(f"finetune.unfreeze_layers={layers} but backbone has {len(ordered)} layers")


def block_lr_multipliers(model: keras.Model, decay: float) -> dict:
    """Variable path -> LR factor: 1 for the top trainable backbone block, `decay`**k k blocks lower."""
    multipliers, depth = {}, 0
    for _, group in reversed(backbone_blocks(_backbone(model))):
        variables = [v for layer in group for v in layer.trainable_weights]
        if not variables:
            continue
        for variable in variables:
            multipliers[variable.path] = float(decay ** depth)
        depth += 1
    return multipliers


def _trainable_count(model: keras.Model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def _write_history(path: str, stages: list):
    keys = sorted({k for _, history in stages for k in history})
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "stage", *keys])
        epoch = 0
        for stage, history in stages:
            for i in range(len(history.get("loss", []))):
                writer.writerow([epoch, stage, *[history[k][i] if i < len(history.get(k, [])) else "" for k in keys]])
                epoch += 1


def stage_epochs(cfg: RunConfig, total_epochs: int = None) -> tuple:
    """(last epoch of stage 1, last epoch of stage 2); `total_epochs` (e.g. a Hyperband budget) cuts or
    replaces their sum, stage 1 first: total 5 with train.epochs=3, finetune.epochs=4 -> (3, 5)."""
    total = total_epochs or cfg.train.epochs + cfg.finetune.epochs
    first = min(cfg.train.epochs, total) if cfg.finetune.epochs else total
    return first, total


def fit_stages(model: keras.Model, data, cfg: RunConfig, run_dir: str, total_epochs: int = None,
               initial_epoch: int = 0, extra_callbacks=()) -> StagedResult:
    """Stage 1 (head, backbone frozen if asked), then stage 2 (top unfrozen, lower LR) if finetune.epochs > 0.

    Epochs are numbered continuously across the stages. `total_epochs` overrides their sum and
    `initial_epoch` skips what is done (keras-tuner's Hyperband passes both); `extra_callbacks`
    run in both stages (e.g. the tuner's trial reporting).
    """
    f = cfg.finetune
    first, total = stage_epochs(cfg, total_epochs)
    if total > first:
        _check_unfreeze(model, f.unfreeze_layers, f.unfreeze_blocks)  # fail before stage 1, not after it
    results, stages = [], []
    if initial_epoch < first:
        if f.freeze_backbone:
            freeze_backbone(model)
        head = fit(model, data, cfg.train, run_dir, epochs=first, initial_epoch=initial_epoch,
                   extra_callbacks=extra_callbacks)
        results.append(("head", head))
        stages.append({"stage": "head", "epochs": len(head.history.get("loss", [])),
                       "learning_rate": cfg.train.learning_rate, "backbone_frozen": f.freeze_backbone,
                       "trainable_params": _trainable_count(model), "seconds": round(head.seconds, 2)})
    if total > first:
        unfrozen = unfreeze_top(model, f.unfreeze_layers, f.unfreeze_blocks, f.freeze_batchnorm)
        start = max(first, initial_epoch)
        steps = steps_per_epoch(cfg.train, data.num_train) * (total - first)
        optimizer = build_optimizer(cfg.train, build_schedule(cfg.train, steps, f.learning_rate))
        multipliers = {}
        if f.lr_decay_per_block < 1.0:
            multipliers = block_lr_multipliers(model, f.lr_decay_per_block)
            optimizer = with_lr_multipliers(optimizer, multipliers)
        compile_model(model, cfg.train, steps, f.learning_rate, optimizer=optimizer,
                      soft_labels=has_soft_labels(data.train))
        tune = fit(model, data, cfg.train, os.path.join(run_dir, FINETUNE_DIR), epochs=total,
                   compile=False, initial_epoch=start, extra_callbacks=extra_callbacks)
        results.append(("finetune", tune))
        stages.append({"stage": "finetune", "epochs": len(tune.history.get("loss", [])),
                       "learning_rate": f.learning_rate, "unfrozen_layers": len(unfrozen),
                       "trainable_params": _trainable_count(model), "seconds": round(tune.seconds, 2),
                       "lr_multipliers": sorted(set(multipliers.values()), reverse=True)})
    if len(results) == 1:
        only = results[0][1]
        return StagedResult(**{k.name: getattr(only, k.name) for k in dataclasses.fields(only)}, stages=stages)
    (_, head), (_, tune) = results
    _write_history(os.path.join(run_dir, "history.csv"), [("head", head.history), ("finetune", tune.history)])
    keys = list(dict.fromkeys([*head.history, *tune.history]))
    history = {k: head.history.get(k, []) + tune.history.get(k, []) for k in keys}
    return StagedResult(model=model, history=history, epochs=head.epochs + tune.epochs,
                        seconds=head.seconds + tune.seconds, best_checkpoint=tune.best_checkpoint,
                        stopped_early=head.stopped_early or tune.stopped_early, stages=stages,
                        resume=_merged_resume(head.resume, tune.resume))


def _merged_resume(head: dict, tune: dict) -> dict:
    """One resume report for both stages (each resumes from its own <run_dir>[/finetune]/resume/)."""
    if not head.get("enabled") and not tune.get("enabled"):
        return {"enabled": False}
    corrupt = head.get("corrupt_checkpoints", []) + tune.get("corrupt_checkpoints", [])
    return {"enabled": True, "resumed_from": tune.get("resumed_from") or head.get("resumed_from"),
            "checkpoints_written": head.get("checkpoints_written", 0) + tune.get("checkpoints_written", 0),
            "corrupt_checkpoints": corrupt, "corrupt_checkpoint_count": len(corrupt),
            "stages": {"head": head, "finetune": tune}}
