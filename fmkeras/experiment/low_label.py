"""Low-label evaluation: k labels per class, from scratch vs a pretrained backbone (linear probe, fine-tune).

Every mode trains the same classifier config on the same `data.labels_per_class` examples with the
same `train` budget and reports test accuracy; only the backbone's start and trainability differ:
- scratch:  random init, everything trained;
- probe:    pretrained backbone frozen, a linear head (pooling -> softmax) trained on its features;
- finetune: pretrained backbone, everything trained. With `finetune.epochs` > 0 this is staged
  (fmkeras.transfer.finetune.fit_stages): `train.epochs` with the backbone frozen when
  `finetune.freeze_backbone` (a linear probe first: LP-FT), then `finetune.epochs` with the backbone
  unfrozen at `finetune.learning_rate` (BatchNorm frozen while `finetune.freeze_batchnorm`).
Scratch and probe then train for `train.epochs + finetune.epochs` epochs, so every mode gets the same
number of epochs over the same labelled images with the same augmentation.

Example:
    report = compare_low_label(cfg, weights="runs/pretrain/backbone.keras", modes=("scratch", "finetune"))
"""
from __future__ import annotations

import dataclasses
import os
import time

import keras

from fmkeras.backbones.layer_tree import all_layers
from fmkeras.config import HeadConfig, RunConfig
from fmkeras.data import build_datasets
from fmkeras.errors import ConfigError
from fmkeras.evaluate.report import write_json
from fmkeras.tasks import load_image_source
from fmkeras.train import fit, restores_dtype_policy, seed_everything
from fmkeras.train.trainer import _labels_for_loss
from fmkeras.transfer import BACKBONE_LAYER, build_classifier
from fmkeras.transfer.finetune import fit_stages

MODES = ("scratch", "probe", "finetune")
# A few hundred labels make ~10 steps per epoch: BatchNorm's default 0.99 moving average would lag ~100
# steps behind the weights and wreck inference accuracy (measured: 98% train-mode vs 30% inference
# accuracy on the training images), so low-label runs average over the last ~10 steps instead.
LOW_LABEL_BN_MOMENTUM = 0.9


def set_batchnorm_momentum(model, momentum: float) -> int:
    """Sets every BatchNormalization layer's moving-average momentum; returns how many."""
    layers = [l for l in all_layers(model) if isinstance(l, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.momentum = momentum
    return len(layers)


def _trainable_params(model) -> int:
    return int(sum(v.numpy().size for v in model.trainable_weights))


@restores_dtype_policy
def train_low_label(cfg: RunConfig, mode: str, weights: str = None, run_dir: str = "runs/low_label",
                    source=None) -> tuple:
    """Trains one mode on `cfg.data.labels_per_class` labels; returns (report with test accuracy and costs,
    the trained classifier)."""
    if mode not in MODES:
        raise ConfigError(f"low-label mode must be one of {', '.join(MODES)}. Received: {mode!r}")
    if mode != "scratch" and not weights:
        raise ConfigError(f"low-label mode {mode!r} needs a pretrained backbone file (--weights=PATH.keras)")
    seed_everything(cfg.train)
    source = source or load_image_source(cfg, "lowlabel")
    data = build_datasets(source, cfg.data, cfg.train.batch_size)
    model_cfg = dataclasses.replace(cfg.model, weights=None if mode == "scratch" else weights)
    if mode == "probe":
        model_cfg = dataclasses.replace(model_cfg, head=HeadConfig(pooling=cfg.model.head.pooling))
    model = build_classifier(model_cfg, data.image_shape, len(data.class_names))
    if mode == "probe":
        model.get_layer(BACKBONE_LAYER).trainable = False  # BatchNorm then runs in inference mode too
    set_batchnorm_momentum(model, LOW_LABEL_BN_MOMENTUM)
    mode_dir = os.path.join(run_dir, mode)
    if mode == "finetune" and cfg.finetune.epochs:
        result = fit_stages(model, data, cfg, mode_dir)
    else:
        epochs = cfg.train.epochs + cfg.finetune.epochs  # the same epoch budget as staged fine-tuning
        result = fit(model, data, dataclasses.replace(cfg.train, epochs=epochs), mode_dir)
    test = data.test if data.test is not None else data.val
    # With label smoothing the model is compiled for one-hot labels: encode the test labels to match.
    test = _labels_for_loss(test, len(data.class_names), bool(cfg.train.label_smoothing))
    scores = model.evaluate(test, verbose=0, return_dict=True)
    return {"mode": mode, "test_accuracy": round(float(scores["accuracy"]), 4), "labels": data.num_train,
            "labels_per_class": cfg.data.labels_per_class, "train_seconds": round(result.seconds, 2),
            "epochs": len(result.epochs), "trainable_params": _trainable_params(model),
            "params": model.count_params(), **({"stages": result.stages} if hasattr(result, "stages") else {})}, model


def compare_low_label(cfg: RunConfig, weights: str = None, modes=MODES, run_dir: str = None) -> dict:
    """Runs each mode on the same labels and writes `low_label.json` in `run_dir`; returns the report."""
    run_dir = run_dir or os.path.join(cfg.run_root, f"{cfg.name}-low_label")
    os.makedirs(run_dir, exist_ok=True)
    source = load_image_source(cfg, "lowlabel")
    start = time.perf_counter()
    results = {mode: train_low_label(cfg, mode, weights, run_dir, source)[0] for mode in modes}
    report = {"weights": weights, "labels_per_class": cfg.data.labels_per_class, "results": results,
              "seconds": round(time.perf_counter() - start, 2)}
    if "scratch" in results:
        report["gain_over_scratch"] = {m: round(r["test_accuracy"] - results["scratch"]["test_accuracy"], 4)
                                       for m, r in results.items() if m != "scratch"}
    write_json(os.path.join(run_dir, "low_label.json"), report)
    return report
