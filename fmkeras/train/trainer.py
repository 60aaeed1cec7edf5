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
from fmkeras.transfer.adversarial import AdversarialTraining


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


def _labels_for_loss(ds, num_classes: int, smoothing: float):
    if ds is None or not smoothing:
        return ds
    return ds.map(lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE)


def compile_model(model: keras.Model, cfg: TrainConfig, total_steps: int, learning_rate: float = None):
    """Compiles `model` with the configured optimizer, schedule, loss and accuracy metric."""
    apply_l2(model, cfg.l2)
    optimizer = build_optimizer(cfg, build_schedule(cfg, total_steps, learning_rate))
    loss = build_loss(cfg)
    if cfg.label_smoothing:
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def fit(model: keras.Model, data, cfg: TrainConfig, run_dir: str, epochs: int = None,
        learning_rate: float = None, compile: bool = True, initial_epoch: int = 0) -> TrainResult:
    """Fits `model` on `data.train` (validating on `data.val`) and restores the best weights."""
    epochs = epochs or cfg.epochs
    steps = steps_per_epoch(cfg, data.num_train)
    trained = model
    if cfg.adversarial != "none":
        # The wrapper shares `model`'s weights: fitting it trains `model` on clean + adversarial batches.
        model = AdversarialTraining(trained, cfg.adversarial, cfg.adversarial_epsilon, cfg.adversarial_steps)
        compile = True
    if compile:
        compile_model(model, cfg, steps * epochs, learning_rate)
    num_classes = model.output_shape[-1]
    train = _labels_for_loss(data.train, num_classes, cfg.label_smoothing)
    val = _labels_for_loss(data.val, num_classes, cfg.label_smoothing)
    if cfg.steps_per_epoch:
        train = train.repeat()
    monitor = "val_loss" if val is not None else "loss"
    callbacks = standard_callbacks(cfg, run_dir, monitor)
    start = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=epochs, steps_per_epoch=steps if cfg.steps_per_epoch
                        else None, callbacks=list(callbacks.values()), verbose=cfg.verbose, shuffle=False,
                        initial_epoch=initial_epoch)
    seconds = time.perf_counter() - start
    best = callbacks["checkpoint"].filepath
    if os.path.isfile(best):
        model.load_weights(best)
    stopper = callbacks.get("early_stopping")
    return TrainResult(model=trained, history={k: [float(v) for v in vs] for k, vs in history.history.items()},
                       epochs=callbacks["throughput"].epochs, seconds=seconds, best_checkpoint=best,
                       stopped_early=bool(stopper and stopper.stopped_epoch))
