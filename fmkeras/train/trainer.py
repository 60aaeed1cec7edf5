"""Compile and fit a model on a `Datasets` with the standard callbacks; keep the best weights.

The trainer does not know which model it trains: it takes any compiled-able Keras model.

Example:
    result = fit(model, data, cfg.train, run_dir="runs/demo")
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time

import keras
import tensorflow as tf

from fmkeras.config import TrainConfig
from fmkeras.hardware import cpu_has_native_bfloat16, has_gpu  # resolve_precision reads them here (tests patch)
from fmkeras.train.batch_norm_stats import recompute_batch_norm_statistics
from fmkeras.train.callbacks import standard_callbacks
from fmkeras.train.checkpoints import CheckpointStore
from fmkeras.train.losses import build_loss
from fmkeras.train.resume import Position, SigtermFlag, StepCheckpoint
from fmkeras.train.optimizers import apply_l2, build_optimizer
from fmkeras.train.pruning import GradualPruning
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
    """Prepares the process for a run: seeds Python, NumPy and TF, turns on op determinism when asked
    (slower, bit-reproducible) and sets the Keras dtype policy of `train.precision` for the models built
    next (every entry point calls this before building one)."""
    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    set_precision(resolve_precision(cfg.precision))


def restores_dtype_policy(func):
    """Decorates an entry point that calls `seed_everything` (which sets Keras' global dtype policy for the
    models it builds) so that the caller's policy is back when it returns or raises: a notebook that trains
    a mixed_bfloat16 run and then builds its own model gets float32 as before, not the run's policy."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        before = keras.config.dtype_policy()
        try:
            return func(*args, **kwargs)
        finally:
            keras.config.set_dtype_policy(before)
    return wrapper


def resolve_precision(policy: str) -> str:
    """`train.precision` as the Keras policy to set: `auto` is mixed_bfloat16 on a CPU with native bfloat16
    (AMX/AVX512-BF16: ~1.5x the float32 training speed of a small CNN there) and no GPU, float32 elsewhere
    (on an AVX2-only CPU bfloat16 is emulated, slower than float32; on a GPU set mixed_float16 yourself)."""
    if policy != "auto":
        return policy
    if has_gpu():  # the CPU's flags say nothing about the GPU that trains
        return "float32"
    return "mixed_bfloat16" if cpu_has_native_bfloat16() else "float32"


def set_precision(policy: str):
    """Keras' global dtype policy: float32, mixed_float16 or mixed_bfloat16 (variables stay float32).

    Classifier heads are built with dtype="float32" (fmkeras.transfer.heads), so the softmax and the
    loss stay float32; with mixed_float16 `model.compile` wraps the optimizer in a LossScaleOptimizer.
    """
    keras.config.set_dtype_policy(policy)


def steps_per_epoch(cfg: TrainConfig, num_train: int) -> int:
    return cfg.steps_per_epoch or max(1, math.ceil(num_train / cfg.batch_size))


def has_soft_labels(ds) -> bool:
    """True when a dataset yields (B, K) one-hot/soft labels (MixUp/CutMix) instead of (B,) class ids."""
    return ds is not None and ds.element_spec[1].shape.rank == 2


def _labels_for_loss(ds, num_classes: int, categorical: bool):
    """`ds` with class ids one-hot encoded when the loss is categorical; (B, K) labels (soft or multi-hot)
    pass unchanged."""
    if ds is None or not categorical or has_soft_labels(ds):
        return ds
    return ds.map(lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE)


def multi_label_metrics() -> list:
    """Area under the precision-recall curve over all classes (`auc_pr`) and per-label binary accuracy."""
    return [keras.metrics.AUC(multi_label=True, curve="PR", name="auc_pr"),
            keras.metrics.BinaryAccuracy(name="binary_accuracy")]


def compile_model(model: keras.Model, cfg: TrainConfig, total_steps: int, learning_rate: float = None,
                  optimizer: keras.optimizers.Optimizer = None, soft_labels: bool = False):
    """Compiles `model` with the configured optimizer, schedule, loss and accuracy metric (`auc_pr` and
    `binary_accuracy` for train.loss=binary_crossentropy).

    optimizer: replaces the configured one (e.g. one with per-block LRs from transfer.finetune).
    soft_labels: the training labels are (B, K) probabilities (MixUp/CutMix), so the loss is
    categorical even without label smoothing.
    """
    apply_l2(model, cfg.l2)
    optimizer = optimizer or build_optimizer(cfg, build_schedule(cfg, total_steps, learning_rate))
    if cfg.loss == "binary_crossentropy":  # multi-hot (B, K) labels, one sigmoid per class
        model.compile(optimizer=optimizer, loss=build_loss(cfg), metrics=multi_label_metrics())
        return model
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


def _fit_phases(model, stream, val, cfg: TrainConfig, position, epochs: int, steps: int, callbacks: list,
                resume: StepCheckpoint = None, class_weight: dict = None):
    """Runs model.fit from `position`: first the rest of a partly trained epoch, then whole epochs."""
    common = dict(validation_data=val, callbacks=callbacks, verbose=cfg.verbose, shuffle=False,
                  class_weight=class_weight)
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
        learning_rate: float = None, compile: bool = True, initial_epoch: int = 0,
        extra_callbacks=(), stage: str = "train") -> TrainResult:
    """Fits `model` on `data` (validating on `data.val`), resumably, and restores the best weights.

    With `cfg.backup_every_steps` a checkpoint goes to `<run_dir>/resume/<stage>/` every N steps
    and at each epoch end; calling `fit` again with the same run_dir (a new process, the same
    config) continues at the checkpoint's exact step over the same batches (`data.train_batches`).
    SIGTERM writes a checkpoint and raises `TrainingInterrupted`. Data without a step-indexed
    stream (`train_batches` None, e.g. text) trains on the epoch pipeline `data.train`, resume off.
    `extra_callbacks` run after the standard ones (e.g. keras-tuner's trial reporting).
    """
    epochs = epochs or cfg.epochs
    steps = steps_per_epoch(cfg, data.num_train)
    # The labels' shape decides the loss: soft (B, K) training labels need a categorical loss,
    # and then the validation labels are one-hot encoded to match.
    categorical = bool(cfg.label_smoothing) or has_soft_labels(data.train)
    trained = model
    if cfg.adversarial != "none":
        # Imported here: fmkeras.transfer imports this module (finetune drives fit).
        from fmkeras.train.adversarial import AdversarialTraining
        # The wrapper shares `model`'s weights: fitting it trains `model` on clean + adversarial batches.
        model = AdversarialTraining(trained, cfg.adversarial, cfg.adversarial_epsilon, cfg.adversarial_steps)
        compile = True
    if compile:
        compile_model(model, cfg, steps * epochs, learning_rate, soft_labels=has_soft_labels(data.train))
    num_classes = model.output_shape[-1]
    batches = getattr(data, "train_batches", None)
    if batches is None and cfg.backup_every_steps:
        log.warning("data has no step-indexed stream (train_batches); training on the epoch pipeline, "
                    "this run cannot resume mid-run (train.backup_every_steps=%d ignored)", cfg.backup_every_steps)
        cfg = dataclasses.replace(cfg, backup_every_steps=0)
    val = _labels_for_loss(data.val, num_classes, categorical)
    monitor = "val_loss" if val is not None else "loss"
    store = CheckpointStore(os.path.join(run_dir, "resume", stage), keep=cfg.keep_checkpoints)
    resuming = bool(cfg.backup_every_steps and store.steps())
    callbacks = standard_callbacks(cfg, run_dir, monitor, resuming=resuming)
    pruning = None
    if cfg.prune_sparsity:
        pruning = GradualPruning(cfg.prune_sparsity, steps * epochs, cfg.prune_schedule, cfg.prune_begin,
                                 cfg.prune_end, cfg.prune_frequency)
        extra_callbacks = [*extra_callbacks, pruning]
    resume = None
    start = time.perf_counter()
    if cfg.backup_every_steps:
        def stream(first, num):
            return _labels_for_loss(batches(first, num), num_classes, categorical)

        resume = _fit_resumable(model, data, cfg, store, stream, val, epochs, steps, initial_epoch, callbacks,
                                extra_callbacks, resuming)
        history = resume.history_dict()
    else:
        train = _labels_for_loss(data.train, num_classes, categorical)
        if cfg.steps_per_epoch:
            train = train.repeat()
        fitted = model.fit(train, validation_data=val, epochs=epochs, steps_per_epoch=steps if cfg.steps_per_epoch
                           else None, callbacks=[*callbacks.values(), *extra_callbacks], verbose=cfg.verbose,
                           shuffle=False, initial_epoch=initial_epoch,
                           class_weight=getattr(data, "class_weight", None))  # data.balance=weights
        history = {k: [float(v) for v in vs] for k, vs in fitted.history.items()}
    best = callbacks["checkpoint"].filepath
    if os.path.isfile(best):
        model.load_weights(best)
    if pruning is not None:
        pruning.prune_to_final()  # the best epoch may predate the final sparsity
    if cfg.batch_norm_batches:  # the kept weights' own BatchNorm statistics (counted in the fit time)
        began = time.perf_counter()
        used = recompute_batch_norm_statistics(trained, data.train, cfg.batch_norm_batches)
        if used:
            log.info("BatchNorm statistics re-estimated from %d training batches in %.1f s (train.batch_norm_batches)",
                     used, time.perf_counter() - began)
    seconds = time.perf_counter() - start
    stopper = callbacks.get("early_stopping")
    return TrainResult(model=trained, history=history, epochs=callbacks["throughput"].epochs, seconds=seconds,
                       best_checkpoint=best, stopped_early=bool(stopper and stopper.stopped_epoch),
                       resume=resume_report(resume))


def _fit_resumable(model, data, cfg: TrainConfig, store: CheckpointStore, stream, val, epochs: int, steps: int,
                   initial_epoch: int, callbacks: dict, extra_callbacks, resuming: bool) -> StepCheckpoint:
    """Restores the newest checkpoint (if any) and trains the rest over the step-indexed stream."""
    stop_flag = SigtermFlag()
    facts = {"num_train": data.num_train, "steps_per_epoch": steps, "epochs": epochs,
             "batch_size": cfg.batch_size, "seed": cfg.seed, "data_seed": data.train_batches.cfg.seed}
    resume = StepCheckpoint(store, cfg.backup_every_steps, steps, epochs, callbacks, facts, stop_flag)
    position = Position(epoch=initial_epoch)
    if resuming:
        # Optimizer slots and metric accumulators exist only after a build; create them to assign into.
        # Keras 3 has no public call that builds them without training a step; `_symbolic_build` is what
        # `fit` itself calls first (tested with Keras 3.12-3.15; setup.cfg pins keras<3.16).
        model._symbolic_build(data_batch=_first_batch(stream))
        position = resume.restore(model)
    callback_list = [*callbacks.values(), *extra_callbacks, resume]  # StepCheckpoint must come last
    with stop_flag:
        if not position.complete:
            _fit_phases(model, stream, val, cfg, position, epochs, steps, callback_list, resume,
                        getattr(data, "class_weight", None))
    return resume


def resume_report(resume) -> dict:
    """What the run report says about checkpoints: where it resumed from, what was skipped as corrupt."""
    if resume is None:
        return {"enabled": False}
    return {"enabled": True, "resumed_from": resume.resumed_from, "checkpoints_written": len(resume.saved),
            "corrupt_checkpoints": [{"path": p, "reason": r} for p, r in resume.rejected],
            "corrupt_checkpoint_count": len(resume.rejected)}
