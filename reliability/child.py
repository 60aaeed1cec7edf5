"""`fmkeras train` with progress reporting and injected faults, for the reliability harness.

Usage: python -m reliability.child [--die_in_write=STEP | --die_after_rename=STEP] -- FMKERAS-TRAIN-FLAGS

Prints `step N` (global step, flushed) after every training step; with `--stop_at=N` it
SIGSTOPs itself after step N so the harness, however late it is scheduled, delivers its
SIGKILL or SIGTERM at that step (then resumes it with SIGCONT). The faults patch fmkeras' checkpoint writer from outside:
`--die_in_write` SIGKILLs the process halfway through writing the checkpoint of STEP (a torn
temp file); `--die_after_rename` after the rename but before the directory fsync and pruning.
The library has no test hooks; this wrapper is the only place faults come from.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys


def _install(die_in_write: int, die_after_rename: int, stop_at: int):
    from fmkeras.train import checkpoints, resume

    original_end = resume.StepCheckpoint.on_train_batch_end
    stopped = []

    def report(self, batch, logs=None):
        original_end(self, batch, logs)
        step = self._epoch * self.steps + self.batch_offset + batch + 1
        print(f"step {step}", flush=True)
        if stop_at is not None and step >= stop_at and not stopped:
            stopped.append(step)
            os.kill(os.getpid(), signal.SIGSTOP)  # wait, frozen, for the harness's signal

    resume.StepCheckpoint.on_train_batch_end = report

    original_save = checkpoints.CheckpointStore.save

    def save(self, step, arrays, meta):
        if die_in_write is not None and step >= die_in_write:
            blob = checkpoints.pack(arrays, {**meta, "global_step": step})
            tmp = os.path.join(self.directory, f".step-{step:010d}.ckpt.tmp-{os.getpid()}")
            with open(tmp, "wb") as fh:
                fh.write(blob[: len(blob) // 2])
                fh.flush()
                os.fsync(fh.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        if die_after_rename is not None and step >= die_after_rename:
            checkpoints.fsync_dir = lambda path: os.kill(os.getpid(), signal.SIGKILL)
        return original_save(self, step, arrays, meta)

    checkpoints.CheckpointStore.save = save


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--die_in_write", type=int)
    parser.add_argument("--die_after_rename", type=int)
    parser.add_argument("--stop_at", type=int, help="SIGSTOP self after this step (harness then signals)")
    args, rest = parser.parse_known_args(argv)
    rest = [a for a in rest if a != "--"]
    _install(args.die_in_write, args.die_after_rename, args.stop_at)
    from fmkeras.cli.main import run
    sys.argv = ["fmkeras", "train", *rest]
    run()


if __name__ == "__main__":
    main(sys.argv[1:])
