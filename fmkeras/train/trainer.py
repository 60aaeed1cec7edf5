"""Compile and fit a model on a `Datasets` with the standard callbacks; keep the best weights.

The trainer does not know which model it trains: it takes any compiled-able Keras model.

Example:
    result = fit(model, data, cfg.train, run_dir="runs/demo")
"""
from __future__ import annotations

import dataclasses
import math
import os
import time

import keras
import tensorflow as tf

from fmkeras.config import TrainConfig
from fmkeras.train.callbacks import standard_callbacks
from fmkeras.train.losses import build_loss
from fmkeras.train.optimizers import apply_l2, build_optimizer
from fmkeras.train.schedules import build_schedule


@dataclasses.dataclass
class TrainResult:
    """What a fit produced: the model (best weights restored), its history and timings."""
    model: keras.Model
    history: dict
    epochs: list
    seconds: float
    best_checkpoint: str
    stopped_early: bool


def seed_everything(cfg: TrainConfig):
    """Seeds Python, NumPy and TF; turns on op determinism when asked (slower, bit-reproducible)."""
    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()


def steps_per_epoch(cfg: TrainConfig, num_train: int) -> int:
    return cfg.steps_per_epoch or max(1, math.ceil(num_train / cfg.batch_size))


def has_soft_labels(ds) -> bool:
    """True when a dataset yields (B, K) one-hot/soft labels (MixUp/CutMix) instead of (B,) class ids."""
    return ds is not None and ds.element_spec[1].shape.rank == 2


def _labels_for_loss(ds, num_classes: int, categorical: bool):
    if ds is None or not categorical or has_soft_labels(ds):
        return ds
    return ds.map(lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE)


def compile_model(model: keras.Model, cfg: TrainConfig, total_steps: int, learning_rate: float = None,
                  optimizer: keras.optimizers.Optimizer = None, soft_labels: bool = False):
    """Compiles `model` with the configured optimizer, schedule, loss and accuracy metric.

    optimizer: replaces the configured one (e.g. one with per-block LRs from transfer.finetune).
    soft_labels: the training labels are (B, K) probabilities (MixUp/CutMix), so the loss is
    categorical even without label smoothing.
    """
    apply_l2(model, cfg.l2)
    optimizer = optimizer or build_optimizer(cfg, build_schedule(cfg, total_steps, learning_rate))
    if soft_labels and cfg.loss == "crossentropy":
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    else:
        loss = build_loss(cfg)
    if cfg.label_smoothing or soft_labels:
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def fit(model: keras.Model, data, cfg: TrainConfig, run_dir: str, epochs: int = None,
        learning_rate: float = None, compile: bool = True, initial_epoch: int = 0,
        extra_callbacks=()) -> TrainResult:
    """Fits `model` on `data.train` (validating on `data.val`) and restores the best weights.

    `extra_callbacks` run after the standard ones (e.g. keras-tuner's trial reporting)."""
    epochs = epochs or cfg.epochs
    steps = steps_per_epoch(cfg, data.num_train)
    # The labels' shape decides the loss: soft (B, K) training labels need a categorical loss,
    # and then the validation labels are one-hot encoded to match.
    categorical = bool(cfg.label_smoothing) or has_soft_labels(data.train)
    trained = model
    if cfg.adversarial != "none":
        # Imported here: fmkeras.transfer imports this module (finetune drives fit).
        from fmkeras.transfer.adversarial import AdversarialTraining
        # The wrapper shares `model`'s weights: fitting it trains `model` on clean + adversarial batches.
        model = AdversarialTraining(trained, cfg.adversarial, cfg.adversarial_epsilon, cfg.adversarial_steps)
        compile = True
    if compile:
        compile_model(model, cfg, steps * epochs, learning_rate, soft_labels=has_soft_labels(data.train))
    num_classes = model.output_shape[-1]
    train = _labels_for_loss(data.train, num_classes, categorical)
    val = _labels_for_loss(data.val, num_classes, categorical)
    if cfg.steps_per_epoch:
        train = train.repeat()
    monitor = "val_loss" if val is not None else "loss"
    callbacks = standard_callbacks(cfg, run_dir, monitor)
    start = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=epochs, steps_per_epoch=steps if cfg.steps_per_epoch
                        else None, callbacks=[*callbacks.values(), *extra_callbacks], verbose=cfg.verbose,
                        shuffle=False, initial_epoch=initial_epoch)
    seconds = time.perf_counter() - start
    best = callbacks["checkpoint"].filepath
    if os.path.isfile(best):
        model.load_weights(best)
    stopper = callbacks.get("early_stopping")
    return TrainResult(model=trained, history={k: [float(v) for v in vs] for k, vs in history.history.items()},
                       epochs=callbacks["throughput"].epochs, seconds=seconds, best_checkpoint=best,
                       stopped_early=bool(stopper and stopper.stopped_epoch))
