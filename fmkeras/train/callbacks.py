"""The callbacks every run gets, writing into its run directory."""
from __future__ import annotations

import os
import time

import keras

from fmkeras.config import TrainConfig
from fmkeras.train.checkpoints import fsync_dir


class Throughput(keras.callbacks.Callback):
    """Records each epoch's wall time, training images/s and the process's CPU seconds (user + system, all
    threads) into `self.epochs`. CPU seconds are the figure to compare on a machine whose cores are shared:
    a throttled or busy core stretches the wall time, not the work done."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.epochs: list = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._cpu_start, self._steps = time.perf_counter(), time.process_time(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.epochs.append({"epoch": epoch + 1, "seconds": round(seconds, 3),
                            "cpu_seconds": round(time.process_time() - self._cpu_start, 3),
                            "images_per_second": round(self._steps * self.batch_size / max(seconds, 1e-9), 1)})


class BestWeights(keras.callbacks.Callback):
    """Saves the weights whenever `monitor` reaches a new minimum, atomically (temp + fsync + rename).

    Keras' ModelCheckpoint overwrites the file in place, so a kill mid-write leaves a torn
    best-weights file; here the previous best stays intact until the new one is complete.
    `best` is plain state the resume checkpoint saves and restores.
    """

    def __init__(self, filepath: str, monitor: str):
        super().__init__()
        self.filepath, self.monitor, self.best = filepath, monitor, None

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None or (self.best is not None and not current < self.best):
            return
        self.best = float(current)
        directory = os.path.dirname(self.filepath)
        tmp = os.path.join(directory, f".tmp-{os.getpid()}-" + os.path.basename(self.filepath))
        self.model.save_weights(tmp, overwrite=True)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.filepath)
        fsync_dir(directory)


def standard_callbacks(cfg: TrainConfig, run_dir: str, monitor: str, resuming: bool = False) -> dict:
    """Best weights on `monitor`, early stopping, TensorBoard, NaN stop, CSV log (appended when resuming)."""
    checkpoints = os.path.join(run_dir, "checkpoints")
    os.makedirs(checkpoints, exist_ok=True)
    callbacks = {}
    if cfg.ema_momentum:
        # First, so validation, the best checkpoint (and early stopping) see the averaged weights:
        # it swaps them in before each evaluation and at each epoch end, and back before the next epoch.
        callbacks["ema"] = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    callbacks.update({
        "checkpoint": BestWeights(os.path.join(checkpoints, "best.weights.h5"), monitor),
        "tensorboard": keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), profile_batch=0),
        "nan": keras.callbacks.TerminateOnNaN(),
        "csv": keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=resuming),
        "throughput": Throughput(cfg.batch_size),
    })
    if cfg.early_stopping_patience:
        callbacks["early_stopping"] = keras.callbacks.EarlyStopping(
            monitor=monitor, patience=cfg.early_stopping_patience, mode="min")
    return callbacks
