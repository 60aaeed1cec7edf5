"""Scenarios 1, 2 and 10 (trainer): kill a real `fmkeras train` process again and again, restart it.

A tiny deterministic run (train.deterministic=true) is trained once uninterrupted, then again
in the same run_dir through a chain of interruptions at seeded random steps: SIGKILL from
outside, SIGTERM (graceful: must exit 143 with a checkpoint), SIGKILL halfway through a
checkpoint write, SIGKILL between the checkpoint rename and the directory fsync; between
restarts the newest checkpoint may be truncated or bit-flipped. The final weights, optimizer
state, best weights and epoch history must equal the uninterrupted run's bit for bit, and the
optimizer step counter must equal the total number of steps.

Example:
    python -m reliability --only=resume_chain
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 180  # seconds one trainer process may take


def tiny_config(limit_train: int, epochs: int, every: int) -> dict:
    """A run of a few dozen steps on real Fashion-MNIST with dropout and augmentation (seed state matters)."""
    return {
        "name": "reliability",
        "data": {"source": "fashion_mnist", "limit_train": limit_train, "limit_test": 64,
                 "validation_split": 0.2, "augment": {"horizontal_flip": True, "rotation": 10}},
        "model": {"backbone": "cnn", "backbone_options": {"filters": [8, 16]},
                  "head": {"dense_units": [16], "dropout": 0.3}},
        "train": {"epochs": epochs, "batch_size": 32, "learning_rate": 0.003, "schedule": "cosine",
                  "deterministic": True, "backup_every_steps": every, "verbose": 0},
        "export": {"enabled": False},
    }


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return env


def run_trainer(config: str, run_dir: str, signal_at: tuple = None, fault: list = (), phase: float = 0.0) -> dict:
    """Runs one trainer process; sends `signal_at=(signum, step)` once it reports that step.

    The signal waits `phase` (0..1) of the last step's duration, so it lands at a random point
    of the following step (compute, data, or the checkpoint write), not always right after
    the progress line.
    """
    stop = [f"--stop_at={signal_at[1]}"] if signal_at else []
    cmd = [sys.executable, "-m", "reliability.child", *fault, *stop, "--", f"--config={config}",
           f"--run_dir={run_dir}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    last_step, sent, previous, intervals = None, None, None, []
    for line in proc.stdout:
        if line.startswith("step "):
            last_step, now = int(line.split()[1]), time.monotonic()
            if previous is not None:
                intervals.append(now - previous)
            previous = now
            if signal_at and sent is None and last_step >= signal_at[1]:
                _wait_stopped(proc.pid)
                if signal_at[0] == signal.SIGKILL:
                    proc.send_signal(signal.SIGCONT)
                    # The median interval is a plain step (a few include validation, checkpoints or tracing).
                    plain = sorted(intervals)[len(intervals) // 2] if len(intervals) >= 3 else 0.0
                    time.sleep(phase * plain)
                    proc.send_signal(signal.SIGKILL)
                else:
                    proc.send_signal(signal_at[0])
                    proc.send_signal(signal.SIGCONT)
                sent = last_step
        if time.monotonic() > deadline:
            proc.kill()
            break
    try:
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    return {"rc": rc, "last_step": last_step, "signal_sent_at": sent, "stderr": proc.stderr.read()[-2000:]}


def _wait_stopped(pid: int, timeout: float = 30.0):
    """Waits until the child has SIGSTOPped itself (state T in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.01)


def newest_checkpoint(run_dir: str):
    from fmkeras.train.checkpoints import CheckpointStore
    store = CheckpointStore(os.path.join(run_dir, "resume", "train"))
    steps = store.steps()
    return (store.path_for(steps[0]), len(steps)) if steps else (None, 0)


def corrupt(path: str, how: str, rng: random.Random):
    """Truncates `path` to a random length or flips one random bit in it."""
    size = os.path.getsize(path)
    if how == "truncate":
        with open(path, "r+b") as fh:
            fh.truncate(rng.randrange(1, size))
    else:
        with open(path, "r+b") as fh:
            offset = rng.randrange(size)
            fh.seek(offset)
            byte = fh.read(1)[0]
            fh.seek(offset)
            fh.write(bytes([byte ^ (1 << rng.randrange(8))]))


def final_state(run_dir: str) -> dict:
    """Arrays and metadata of the run's final checkpoint, its best weights and reported history."""
    import h5py
    from fmkeras.train.checkpoints import CheckpointStore
    found = CheckpointStore(os.path.join(run_dir, "resume", "train")).load_latest()
    best = {}
    with h5py.File(os.path.join(run_dir, "checkpoints", "best.weights.h5"), "r") as fh:
        fh.visititems(lambda name, obj: best.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    with open(os.path.join(run_dir, "metrics.json")) as fh:
        metrics = json.load(fh)
    return {"arrays": found.arrays, "meta": found.meta, "best": best, "history": metrics["history"],
            "report_resume": metrics.get("resume", {})}


def differing_bytes(a: dict, b: dict) -> int:
    """Bytes of arrays that are missing on one side or differ in any element."""
    lost = 0
    for key in set(a) | set(b):
        if key not in a or key not in b or a[key].shape != b[key].shape or not np.array_equal(a[key], b[key]):
            lost += max(a.get(key, np.zeros(0)).nbytes, b.get(key, np.zeros(0)).nbytes)
    return lost


def plan_events(kills: int, total_steps: int, seed: int) -> list:
    """Seeded interruptions at distinct random steps.

    Two events: an outside SIGKILL (then the newest checkpoint is truncated) and a SIGTERM (then
    the newest checkpoint is bit-flipped).
    Three or more: also a SIGKILL halfway through a checkpoint write and, from five, one
    between the rename and the directory fsync; a bit flip corrupts another newest file.
    """
    rng = random.Random(seed)
    steps = sorted(rng.sample(range(1, total_steps), kills))
    kinds = ["kill"] * kills
    kinds[-1 if kills < 3 else 2] = "term"
    if kills >= 3:
        kinds[1] = "die_in_write"
    if kills >= 5:
        kinds[4] = "die_after_rename"
    # The last one makes the final, completing run fall back too, so its report must count it.
    corruptions = {0: "truncate", 3: "bitflip", kills - 1: "bitflip"}
    return [{"kind": k, "step": s, "corrupt": corruptions.get(i)} for i, (k, s) in enumerate(zip(kinds, steps))]


def run(workdir: str, kills: int = 10, limit_train: int = 400, epochs: int = 4, every: int = 2,
        seed: int = 9) -> dict:
    """Runs the baseline and the interrupted chain; returns the scenario's scoreboard entry."""
    os.makedirs(workdir, exist_ok=True)
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w") as fh:
        yaml.safe_dump(tiny_config(limit_train, epochs, every), fh)
    started = time.monotonic()
    baseline_dir, chain_dir = os.path.join(workdir, "baseline"), os.path.join(workdir, "chain")
    base = run_trainer(config, baseline_dir)
    if base["rc"] != 0:
        return {"ok": False, "crashes": 1, "error": "baseline failed: " + base["stderr"][-500:]}
    total = base["last_step"]
    rng = random.Random(seed)
    events, crashes, survived, corrupted, term_ok = plan_events(kills, total, seed), 0, 0, 0, []
    for event in events:
        fault = {"die_in_write": [f"--die_in_write={event['step']}"],
                 "die_after_rename": [f"--die_after_rename={event['step']}"]}.get(event["kind"], [])
        signum = {"kill": signal.SIGKILL, "term": signal.SIGTERM}.get(event["kind"])
        event["phase"] = round(rng.random(), 3)
        result = run_trainer(config, chain_dir, (signum, event["step"]) if signum else None, fault, event["phase"])
        event.update(rc=result["rc"], signal_sent_at=result["signal_sent_at"], last_step=result["last_step"])
        if result["rc"] == -signal.SIGKILL:
            survived += 1
        elif event["kind"] == "term" and result["rc"] == 143:
            path, _ = newest_checkpoint(chain_dir)
            term_ok.append(path is not None and int(os.path.basename(path)[5:15]) >= result["signal_sent_at"])
        elif result["rc"] != 0:
            crashes += 1
            event["stderr"] = result["stderr"][-500:]
        path, count = newest_checkpoint(chain_dir)
        if event["corrupt"] and count >= 2:
            corrupt(path, event["corrupt"], rng)
            corrupted += 1
            event["corrupted"] = os.path.basename(path)
    final = run_trainer(config, chain_dir)
    if final["rc"] != 0:
        return {"ok": False, "crashes": crashes + 1, "events": events, "error": final["stderr"][-500:]}
    a, b = final_state(baseline_dir), final_state(chain_dir)
    lost = differing_bytes(a["arrays"], b["arrays"]) + differing_bytes(a["best"], b["best"])
    iterations = b["meta"]["optimizer_iterations"]
    entry = {
        "total_steps": total, "kills_survived": survived,
        "external_sigkills": sum(e["kind"] == "kill" and e["rc"] == -signal.SIGKILL for e in events),
        "signals_not_landed": sum(e["kind"] in ("kill", "term") and e["signal_sent_at"] is None for e in events),
        "kills_after_training_ended": sum(e["kind"] == "kill" and e["last_step"] == total for e in events), "sigterm_checkpoints": sum(term_ok),
        "sigterm_failures": len(term_ok) - sum(term_ok), "corrupted_checkpoints": corrupted,
        "crashes": crashes, "bytes_lost": lost, "optimizer_iterations": iterations,
        "history_identical": a["history"] == b["history"], "events": events,
        "seconds": round(time.monotonic() - started, 1),
    }
    # The final run met the corrupt newest file only if the last event left one.
    entry["final_run_corrupt_reported"] = b["report_resume"].get("corrupt_checkpoint_count")
    expected_reported = 1 if events[-1].get("corrupted") else 0
    entry["ok"] = (lost == 0 and crashes == 0 and iterations == total and entry["history_identical"]
                   and entry["sigterm_failures"] == 0 and entry["final_run_corrupt_reported"] == expected_reported)
    return entry
