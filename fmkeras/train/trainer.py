"""Compile and fit a model on a `Datasets` with the standard callbacks; keep the best weights.

The trainer does not know which model it trains: it takes any compiled-able Keras model.

Example:
    result = fit(model, data, cfg.train, run_dir="runs/demo")
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time

import keras
import tensorflow as tf

from fmkeras.config import TrainConfig
from fmkeras.train.callbacks import standard_callbacks
from fmkeras.train.checkpoints import CheckpointStore
from fmkeras.train.resume import Position, SigtermFlag, StepCheckpoint
from fmkeras.train.optimizers import apply_l2, build_optimizer
from fmkeras.train.schedules import build_schedule

log = logging.getLogger("fmkeras")


@dataclasses.dataclass
class TrainResult:
    """What a fit produced: the model (best weights restored), its history and timings."""
    model: keras.Model
    history: dict
    epochs: list
    seconds: float
    best_checkpoint: str
    stopped_early: bool
    resume: dict = dataclasses.field(default_factory=dict)


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
    if cfg.label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def _fit_phases(model, stream, val, cfg: TrainConfig, position, epochs: int, steps: int, callbacks: list,
                resume: StepCheckpoint = None):
    """Runs model.fit from `position`: first the rest of a partly trained epoch, then whole epochs."""
    common = dict(validation_data=val, callbacks=callbacks, verbose=cfg.verbose, shuffle=False)
    epoch = position.epoch
    if position.step and epoch < epochs:
        remaining = steps - position.step
        if resume is not None:
            resume.batch_offset = position.step
        model.fit(stream(epoch * steps + position.step, remaining), epochs=epoch + 1, initial_epoch=epoch,
                  steps_per_epoch=remaining, **common)
        epoch += 1
        if model.stop_training:
            return
    if epoch < epochs:
        model.fit(stream(epoch * steps, (epochs - epoch) * steps), epochs=epochs, initial_epoch=epoch,
                  steps_per_epoch=steps, **common)


def _first_batch(stream):
    for batch in stream(0, 1):
        return batch


def fit(model: keras.Model, data, cfg: TrainConfig, run_dir: str, epochs: int = None,
        learning_rate: float = None, compile: bool = True, initial_epoch: int = 0, stage: str = "train") -> TrainResult:
    """Fits `model` on `data` (validating on `data.val`), resumably, and restores the best weights.

    With `cfg.backup_every_steps` a checkpoint goes to `<run_dir>/resume/<stage>/` every N steps
    and at each epoch end; calling `fit` again with the same run_dir (a new process, the same
    config) continues at the checkpoint's exact step over the same batches (`data.train_batches`).
    SIGTERM writes a checkpoint and raises `TrainingInterrupted`.
    """
    epochs = epochs or cfg.epochs
    steps = steps_per_epoch(cfg, data.num_train)
    if compile:
        compile_model(model, cfg, steps * epochs, learning_rate)
    num_classes = model.output_shape[-1]
    batches = data.train_batches
    if batches is None:
        # A Datasets built without a step-indexed stream: replay `data.train` epoch by epoch, not resumable.
        log.warning("data has no step-indexed stream (train_batches); this run cannot resume mid-run")
        cfg = dataclasses.replace(cfg, backup_every_steps=0)
        repeated = data.train.repeat()

        def stream(start, num):
            return _labels_for_loss(repeated.take(num), num_classes, cfg.label_smoothing)
    else:
        def stream(start, num):
            return _labels_for_loss(batches(start, num), num_classes, cfg.label_smoothing)

    val = _labels_for_loss(data.val, num_classes, cfg.label_smoothing)
    monitor = "val_loss" if val is not None else "loss"
    store = CheckpointStore(os.path.join(run_dir, "resume", stage), keep=cfg.keep_checkpoints)
    resuming = bool(cfg.backup_every_steps and store.steps())
    callbacks = standard_callbacks(cfg, run_dir, monitor, resuming=resuming)
    resume, position = None, Position(epoch=initial_epoch)
    stop_flag = SigtermFlag()
    if cfg.backup_every_steps:
        facts = {"num_train": data.num_train, "steps_per_epoch": steps, "epochs": epochs,
                 "batch_size": cfg.batch_size, "seed": cfg.seed, "data_seed": batches.cfg.seed}
        resume = StepCheckpoint(store, cfg.backup_every_steps, steps, epochs, callbacks, facts, stop_flag)
        if resuming:
            # Optimizer slots and metric accumulators exist only after a build; create them to assign into.
            model._symbolic_build(data_batch=_first_batch(stream))
            position = resume.restore(model)
    callback_list = list(callbacks.values()) + ([resume] if resume else [])
    start = time.perf_counter()
    with stop_flag if resume else contextlib.nullcontext():
        if not position.complete:
            _fit_phases(model, stream, val, cfg, position, epochs, steps, callback_list, resume)
    seconds = time.perf_counter() - start
    history = resume.history_dict() if resume else {
        k: [float(v) for v in vs] for k, vs in model.history.history.items()}
    best = callbacks["checkpoint"].filepath
    if os.path.isfile(best):
        model.load_weights(best)
    stopper = callbacks.get("early_stopping")
    return TrainResult(model=model, history=history, epochs=callbacks["throughput"].epochs, seconds=seconds,
                       best_checkpoint=best, stopped_early=bool(stopper and stopper.stopped_epoch),
                       resume=resume_report(resume))


def resume_report(resume) -> dict:
    """What the run report says about checkpoints: where it resumed from, what was skipped as corrupt."""
    if resume is None:
        return {"enabled": False}
    return {"enabled": True, "resumed_from": resume.resumed_from, "checkpoints_written": len(resume.saved),
            "corrupt_checkpoints": [{"path": p, "reason": r} for p, r in resume.rejected],
            "corrupt_checkpoint_count": len(resume.rejected)}
