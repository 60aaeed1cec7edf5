"""The callbacks every run gets, writing into its run directory."""
from __future__ import annotations

import os
import time

import keras

from fmkeras.config import TrainConfig


class Throughput(keras.callbacks.Callback):
    """Records wall time and training images/s of each epoch into `self.epochs`."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.epochs: list = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.epochs.append({"epoch": epoch + 1, "seconds": round(seconds, 3),
                            "images_per_second": round(self._steps * self.batch_size / max(seconds, 1e-9), 1)})


def standard_callbacks(cfg: TrainConfig, run_dir: str, monitor: str) -> dict:
    """Best checkpoint on `monitor`, early stopping, TensorBoard, backup/restore, NaN stop, CSV log."""
    checkpoints = os.path.join(run_dir, "checkpoints")
    os.makedirs(checkpoints, exist_ok=True)
    callbacks = {
        "checkpoint": keras.callbacks.ModelCheckpoint(
            os.path.join(checkpoints, "best.weights.h5"), monitor=monitor, save_best_only=True,
            save_weights_only=True, mode="min"),
        "tensorboard": keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), profile_batch=0),
        "backup": keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup")),
        "nan": keras.callbacks.TerminateOnNaN(),
        "csv": keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv")),
        "throughput": Throughput(cfg.batch_size),
    }
    if cfg.early_stopping_patience:
        callbacks["early_stopping"] = keras.callbacks.EarlyStopping(
            monitor=monitor, patience=cfg.early_stopping_patience, mode="min")
    return callbacks
