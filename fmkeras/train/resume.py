"""Exactly-once, step-granular resume for `fit` (replaces keras BackupAndRestore).

Every `train.backup_every_steps` steps and at every epoch end `StepCheckpoint` writes one checkpoint (see
checkpoints.py) holding the model variables (weights + dropout seed states), the optimizer
variables, the metric accumulators, the position (epoch, step in epoch), the state of the
best-weights and early-stopping callbacks and the epoch history. A checkpoint that falls on
an epoch's last step is written after that epoch's validation and callbacks, so the position
is always "before step s of epoch e" with everything before it done. On restart `restore`
loads the newest valid file and the trainer feeds the step-indexed stream from that exact
batch (data.stream.StepBatches), so no batch is trained twice or skipped.

SIGTERM (e.g. preemption) sets a flag; at the next step boundary a checkpoint is written and
`TrainingInterrupted` ends the run; rerunning the same command resumes from it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import signal
import threading

import keras
import numpy as np

from fmkeras.errors import ConfigError
from fmkeras.train.checkpoints import CheckpointStore

log = logging.getLogger("fmkeras")

# Callback attributes that carry decisions across epochs (restored so a resumed run decides alike).
PEER_STATE = {"checkpoint": ("best",), "early_stopping": ("wait", "best", "stopped_epoch", "best_epoch")}


class TrainingInterrupted(Exception):
    """Training stopped on SIGTERM after writing a checkpoint; rerun the same command to resume."""

    def __init__(self, checkpoint: str, step: int):
        super().__init__(f"training interrupted by SIGTERM at step {step}; checkpoint {checkpoint}; "
                         f"rerun the same command to resume")
        self.checkpoint, self.step = checkpoint, step


@dataclasses.dataclass
class Position:
    """Where training continues: before step `step` of epoch `epoch` (0-based)."""
    epoch: int = 0
    step: int = 0
    complete: bool = False


class SigtermFlag:
    """Context manager: while active, SIGTERM only sets `requested` (main thread only)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        log.warning("SIGTERM received: checkpointing at the next step boundary")
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if hasattr(value, "numpy"):
        return np.asarray(value).item()
    return value


def fingerprint(model: keras.Model, facts: dict) -> dict:
    """What must match for a checkpoint to be resumable: run facts + variable shapes."""
    shapes = json.dumps([list(v.shape) for v in model.variables]).encode()
    return {**facts, "model_variables": hashlib.sha256(shapes).hexdigest()[:16],
            "optimizer": type(model.optimizer).__name__}


class StepCheckpoint(keras.callbacks.Callback):
    """Writes step checkpoints and keeps the run's history; put it LAST in the callback list."""

    def __init__(self, store: CheckpointStore, every: int, steps_per_epoch: int, epochs: int,
                 peers: dict, facts: dict, stop_flag: SigtermFlag = None):
        super().__init__()
        self.store, self.every, self.steps, self.epochs = store, every, steps_per_epoch, epochs
        self.peers, self.facts, self.stop_flag = peers, facts, stop_flag
        self.history: list = []          # one logs dict per finished epoch, across restarts
        self.peer_state: dict = {}
        self.batch_offset = 0            # steps of the current epoch done before this fit call
        self.rejected: list = []         # [(path, reason)] corrupt checkpoints skipped on restore
        self.saved: list = []            # global steps written by this process
        self.resumed_from = None
        self._epoch = 0
        self._metrics = None             # metric accumulators to put back at the first epoch's start

    # -- state ---------------------------------------------------------------------------
    def _capture_peers(self):
        for name, attrs in PEER_STATE.items():
            if name in self.peers:
                self.peer_state[name] = {a: _plain(getattr(self.peers[name], a, None)) for a in attrs}

    def _apply_peers(self):
        for name, values in self.peer_state.items():
            for attr, value in values.items():
                if name in self.peers:
                    setattr(self.peers[name], attr, value)

    def save(self, position: Position) -> str:
        """Writes the checkpoint for `position` (the step the next run starts at)."""
        global_step = position.epoch * self.steps + position.step
        self._capture_peers()
        arrays = {f"model/{i}": np.asarray(v) for i, v in enumerate(self.model.variables)}
        arrays.update({f"optimizer/{i}": np.asarray(v) for i, v in enumerate(self.model.optimizer.variables)})
        arrays.update({f"metrics/{i}": np.asarray(v) for i, v in enumerate(self.model.metrics_variables)})
        meta = {"epoch": position.epoch, "step": position.step, "complete": position.complete,
                "optimizer_iterations": int(np.asarray(self.model.optimizer.iterations)),  # also MirroredVariable
                "fingerprint": fingerprint(self.model, self.facts), "peers": self.peer_state,
                "history": self.history}
        path = self.store.save(global_step, arrays, meta)
        self.saved.append(global_step)
        return path

    def restore(self, model: keras.Model) -> Position:
        """Loads the newest valid checkpoint into `model` (compiled, optimizer and metrics built)."""
        self.set_model(model)
        found = self.store.load_latest()
        if found is None:
            return Position()
        self.rejected = found.rejected
        meta = found.meta
        expected = fingerprint(model, self.facts)
        saved = meta["fingerprint"]
        diff = [f"{k}: {saved.get(k)!r} now {expected[k]!r}" for k in sorted(expected) if saved.get(k) != expected[k]]
        if diff:
            raise ConfigError(f"{found.path} was written by a different run ({'; '.join(diff)}); "
                              f"use a new run_dir or delete {self.store.directory}")
        groups = {"model": model.variables, "optimizer": model.optimizer.variables,
                  "metrics": model.metrics_variables}
        for group, variables in groups.items():
            count = sum(k.startswith(group + "/") for k in found.arrays)
            if count != len(variables):
                raise ConfigError(f"{found.path}: {group} has {count} variables, the model {len(variables)}")
            values = [found.arrays[f"{group}/{i}"] for i in range(count)]
            if group == "metrics":
                # Only a mid-epoch position carries partial-epoch accumulators; at an epoch start they reset.
                self._metrics = values if meta["step"] else None
                continue
            for variable, value in zip(variables, values):
                variable.assign(value)
        self.peer_state, self.history = meta["peers"], meta["history"]
        self.resumed_from = {"path": found.path, "global_step": found.meta["global_step"],
                             "epoch": meta["epoch"], "step": meta["step"]}
        log.info("resuming from %s (epoch %d, step %d)", found.path, meta["epoch"] + 1, meta["step"])
        return Position(meta["epoch"], meta["step"], meta["complete"])

    # -- callback hooks ------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._apply_peers()  # Keras callbacks reset themselves in on_train_begin; put their state back.

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._metrics is not None:
            for variable, value in zip(self.model.metrics_variables, self._metrics):
                variable.assign(value)
            self._metrics = None

    def on_train_batch_end(self, batch, logs=None):
        step = self.batch_offset + batch + 1
        if step >= self.steps:
            return  # the epoch's last step is checkpointed after validation, in on_epoch_end
        global_step = self._epoch * self.steps + step
        stop = self.stop_flag is not None and self.stop_flag.requested
        if stop or (self.every and global_step % self.every == 0):
            path = self.save(Position(self._epoch, step))
            if stop:
                raise TrainingInterrupted(path, global_step)

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({k: _plain(v) for k, v in (logs or {}).items()})
        self.batch_offset = 0
        global_step = (epoch + 1) * self.steps
        stop = self.stop_flag is not None and self.stop_flag.requested
        complete = epoch + 1 >= self.epochs or bool(self.model.stop_training)
        if self.every or stop or complete:  # every epoch boundary is a checkpoint too
            path = self.save(Position(epoch + 1, 0, complete))
            if stop and not complete:
                raise TrainingInterrupted(path, global_step)

    def history_dict(self) -> dict:
        """{metric: [value per epoch]} over every epoch of the run, including earlier processes."""
        keys = sorted({k for logs in self.history for k in logs})
        return {k: [float(logs[k]) for logs in self.history if k in logs] for k in keys}
