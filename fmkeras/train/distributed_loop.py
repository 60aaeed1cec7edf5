"""A custom distributed training loop for strategies Keras 3 `model.fit` cannot run under.

Keras 3 `model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so this loop
does what fit does with tf.distribute primitives: `strategy.experimental_distribute_dataset`,
`strategy.run` of a `tf.function` step, `tf.nn.compute_average_loss` over the *global* batch, and
`strategy.reduce` of the loss/accuracy sums. It drives the same Keras callbacks as the single-host
trainer (best checkpoint, early stopping, TensorBoard, CSV log, NaN stop, throughput) and returns
the same `TrainResult`, so the run report is the same.

Fault tolerance: every `backup_every_steps` steps (and at each epoch end) a `tf.train.Checkpoint`
of the model, optimizer, global step, epoch, position in the epoch (batches consumed) and the
epoch's running sums is written to `backup_dir` by the chief (other workers write a throwaway copy,
as tf.distribute requires every worker to save). A restarted job restores the latest backup,
skips the batches the interrupted epoch already consumed and continues the step counter.
The backup is deleted when training finishes, like keras.callbacks.BackupAndRestore.

Example:
    with strategy.scope():
        model = build_classifier(...)
    result = fit_distributed(model, data, cfg.train, run_dir, strategy, backup_dir=run_dir + "/backup")
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time

import keras
import tensorflow as tf

from fmkeras.config import TrainConfig
from fmkeras.errors import ConfigError
from fmkeras.train.callbacks import standard_callbacks
from fmkeras.train.strategy import is_chief
from fmkeras.train.trainer import TrainResult, _labels_for_loss, compile_model, steps_per_epoch

log = logging.getLogger("fmkeras")
HISTORY_FILE = "history.json"


@dataclasses.dataclass
class DistributedTrainResult(TrainResult):
    """TrainResult plus where a restarted job resumed and how many steps this process ran."""
    resumed_from_step: int = 0
    steps_run: int = 0
    global_step: int = 0


def _per_example_loss(label_smoothing: float):
    if label_smoothing:
        return lambda y, p: keras.losses.categorical_crossentropy(y, p, label_smoothing=label_smoothing)
    return keras.losses.sparse_categorical_crossentropy


def _correct(y, probs):
    labels = tf.argmax(y, axis=-1) if y.shape.rank == 2 else tf.cast(y, tf.int64)
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, axis=-1), labels), tf.float32))


def _build_steps(model, optimizer, strategy, loss_fn):
    """(train_step, eval_step): each maps a distributed batch to the global (loss sum, correct, count)."""
    def replica_train(x, y):
        count = tf.shape(x, out_type=tf.int64)[0]
        global_count = tf.distribute.get_replica_context().all_reduce("sum", count)
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            per_example = loss_fn(y, probs)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_count)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return tf.reduce_sum(per_example), _correct(y, probs), tf.cast(count, tf.float32)

    def replica_eval(x, y):
        probs = model(x, training=False)
        return tf.reduce_sum(loss_fn(y, probs)), _correct(y, probs), tf.cast(tf.shape(x)[0], tf.float32)

    def reduced(fn):
        @tf.function
        def step(batch):
            sums = strategy.run(fn, args=batch)
            return [strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]
        return step

    return reduced(replica_train), reduced(replica_eval)


def _moving_statistics_sync(model, strategy):
    """A step that sets every replica's BatchNorm moving statistics to their mean over all replicas.

    Only gradients are all-reduced during training, so each worker's moving statistics follow its own
    batches; averaging them at each epoch end keeps every worker's model (and a backup) identical.
    """
    variables = [v for v in model.non_trainable_variables if "moving_" in v.path]
    if not variables:
        return None

    @tf.function
    def sync():
        local = strategy.run(lambda: tuple(tf.identity(v.value) for v in variables))
        for variable, values in zip(variables, local):
            variable.assign(strategy.reduce(tf.distribute.ReduceOp.MEAN, values, axis=None))
    return sync


class _Backup:
    """The fault-tolerance checkpoint: model, optimizer, step, epoch, batches consumed, running sums."""

    def __init__(self, model, optimizer, strategy, backup_dir: str, scratch_dir: str):
        self.chief = is_chief(strategy)
        self.dir = backup_dir
        self.write_dir = backup_dir if self.chief else scratch_dir
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.batch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.sums = tf.Variable([0.0, 0.0, 0.0], dtype=tf.float64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=self.step, epoch=self.epoch,
                                              batch=self.batch, sums=self.sums)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.write_dir, max_to_keep=1)

    def restore(self) -> list:
        """Restores the chief's latest backup (if any); returns the history saved with it."""
        latest = tf.train.latest_checkpoint(self.dir)
        if not latest:
            return []
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        path = os.path.join(self.dir, HISTORY_FILE)
        history = json.load(open(path)) if os.path.isfile(path) else []
        log.info("resumed from %s: step %d, epoch %d, batch %d", latest, int(self.step.numpy()),
                 int(self.epoch.numpy()), int(self.batch.numpy()))
        return history

    def save(self, step: int, epoch: int, batch: int, sums, history: list):
        self.step.assign(step)
        self.epoch.assign(epoch)
        self.batch.assign(batch)
        self.sums.assign(list(sums))
        self.manager.save(checkpoint_number=step)
        if self.chief:
            with open(os.path.join(self.dir, HISTORY_FILE + ".tmp"), "w") as fh:
                json.dump(history, fh)
            os.replace(os.path.join(self.dir, HISTORY_FILE + ".tmp"), os.path.join(self.dir, HISTORY_FILE))

    def finish(self):
        """Training completed: the backup is no longer needed (a rerun starts afresh)."""
        shutil.rmtree(self.write_dir, ignore_errors=True)


def _history_dict(epoch_logs: list) -> dict:
    history = {}
    for logs in epoch_logs:
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
    return history


def check_distributed_settings(cfg: TrainConfig, balance: str = "none"):
    """Refuses settings this loop cannot honour, before anything is built or written."""
    if balance == "weights":
        raise ConfigError("`data.balance=weights` is not supported by the multi-worker loop; use data.balance="
                          "sample. Received: data.balance='weights'")
    if cfg.prune_sparsity:
        raise ConfigError(f"`train.prune_sparsity` is not supported by the multi-worker loop. "
                          f"Received: train.prune_sparsity={cfg.prune_sparsity}")
    if cfg.batch_norm_batches:
        # The recipes set it for short runs; under a multi-worker strategy the layers' statistics are mirrored
        # variables that an eager call outside strategy.run cannot assign. Kept: the moving averages.
        log.warning("train.batch_norm_batches=%d is not applied by the multi-worker loop: the BatchNorm layers keep "
                    "the moving statistics taken during training", cfg.batch_norm_batches)
    if cfg.precision == "mixed_float16":
        # The loop applies the gradients of the unscaled loss; float16 needs loss scaling (model.fit's job).
        raise ConfigError("`train.precision=mixed_float16` is not supported by the multi-worker loop; use "
                          "mixed_bfloat16 or float32. Received: train.precision='mixed_float16'")


def fit_distributed(model: keras.Model, data, cfg: TrainConfig, run_dir: str, strategy, backup_dir: str,
                    backup_every_steps: int = 50, epochs: int = None, learning_rate: float = None
                    ) -> DistributedTrainResult:
    """Trains `model` (built under `strategy.scope()`) with a custom loop; `cfg.batch_size` is the global batch.

    `run_dir` is this task's own directory (callbacks, and a non-chief's throwaway backup, write there);
    `backup_dir` is the chief's backup, which every task restores from (a shared filesystem).
    """
    check_distributed_settings(cfg, "weights" if getattr(data, "class_weight", None) else "none")
    epochs = epochs or cfg.epochs
    steps = steps_per_epoch(cfg, data.num_train)
    with strategy.scope():
        compile_model(model, cfg, steps * epochs, learning_rate)
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
    num_classes = model.output_shape[-1]
    train = _labels_for_loss(data.train, num_classes, cfg.label_smoothing)
    val = _labels_for_loss(data.val, num_classes, cfg.label_smoothing)
    train_step, eval_step = _build_steps(model, optimizer, strategy, _per_example_loss(cfg.label_smoothing))
    sync_statistics = _moving_statistics_sync(model, strategy)
    backup = _Backup(model, optimizer, strategy, backup_dir, os.path.join(run_dir, "backup-scratch"))
    epoch_logs = backup.restore()
    first_epoch, skip, sums = int(backup.epoch.numpy()), int(backup.batch.numpy()), list(backup.sums.numpy())
    global_step = resumed_from = int(backup.step.numpy())

    monitor = "val_loss" if val is not None else "loss"
    named = standard_callbacks(cfg, run_dir, monitor)
    named.pop("backup", None)  # the standard callbacks hold no model.fit backup; this loop keeps its own
    callbacks = keras.callbacks.CallbackList(list(named.values()), model=model, epochs=epochs, steps=steps,
                                             verbose=0)
    model.stop_training = False
    start = time.perf_counter()
    callbacks.on_train_begin()
    if epoch_logs and os.path.isfile(named["checkpoint"].filepath):
        # Resumed: the best epoch before the interruption is still the one to beat (its weights are on disk).
        named["checkpoint"].best = min(logs[monitor] for logs in epoch_logs)
    # Distributed once and iterated per epoch, so each epoch draws a new shuffle (as model.fit does).
    train_batches = strategy.experimental_distribute_dataset(train.repeat() if cfg.steps_per_epoch else train)
    shared = iter(train_batches) if cfg.steps_per_epoch else None
    val_batches = strategy.experimental_distribute_dataset(val) if val is not None else None
    for epoch in range(first_epoch, epochs):
        callbacks.on_epoch_begin(epoch)
        if skip:  # resuming inside an epoch: the batches it already consumed are skipped
            batches = iter(strategy.experimental_distribute_dataset(train.repeat().skip(skip)))
        else:
            batches = shared or iter(train_batches)
        batch = skip
        for _ in range(steps - skip):
            dist_batch = next(batches, None)
            if dist_batch is None:
                break
            callbacks.on_train_batch_begin(batch)
            loss_sum, correct, count = (float(v) for v in train_step(dist_batch))
            sums = [sums[0] + loss_sum, sums[1] + correct, sums[2] + count]
            batch, global_step = batch + 1, global_step + 1
            callbacks.on_train_batch_end(batch - 1, {"loss": loss_sum / max(count, 1.0)})
            if global_step % backup_every_steps == 0 and batch < steps:
                backup.save(global_step, epoch, batch, sums, epoch_logs)
            if model.stop_training:
                break
        logs = {"loss": sums[0] / max(sums[2], 1.0), "accuracy": sums[1] / max(sums[2], 1.0)}
        if sync_statistics is not None:
            sync_statistics()
        if val is not None:
            totals = [0.0, 0.0, 0.0]
            for dist_batch in val_batches:
                totals = [t + float(v) for t, v in zip(totals, eval_step(dist_batch))]
            logs.update(val_loss=totals[0] / max(totals[2], 1.0), val_accuracy=totals[1] / max(totals[2], 1.0))
        callbacks.on_epoch_end(epoch, logs)
        epoch_logs.append({k: float(v) for k, v in logs.items()})
        if cfg.verbose:
            log.info("epoch %d/%d %s", epoch + 1, epochs, " ".join(f"{k}={v:.4f}" for k, v in logs.items()))
        skip, sums = 0, [0.0, 0.0, 0.0]
        backup.save(global_step, epoch + 1, 0, sums, epoch_logs)
        if model.stop_training:
            break
    callbacks.on_train_end()
    seconds = time.perf_counter() - start
    backup.finish()
    best = named["checkpoint"].filepath
    if os.path.isfile(best):
        model.load_weights(best)
    stopper = named.get("early_stopping")
    return DistributedTrainResult(
        model=model, history=_history_dict(epoch_logs), epochs=named["throughput"].epochs, seconds=seconds,
        best_checkpoint=best, stopped_early=bool(stopper and stopper.stopped_epoch),
        resumed_from_step=resumed_from, steps_run=global_step - resumed_from, global_step=global_step)
