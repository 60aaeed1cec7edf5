"""Scenario 2 (file level): fuzz torn checkpoint files; the store must always load the last complete one.

Each round writes two checkpoints, then damages the newest one: truncation at a random
length, a flipped random bit (anywhere: magic, length, digest or payload), random garbage of
the same size, an empty file, or a half-written temp file of a third checkpoint. Loading must
return the previous checkpoint's exact arrays, with the damaged file reported as rejected.
The process-level half (SIGKILL during a real write, after the rename) is in resume_chain.
"""
from __future__ import annotations

import os
import random
import shutil
import time

import numpy as np

DAMAGES = ("truncate", "bitflip", "garbage", "empty", "temp_only")


def run(workdir: str, rounds: int = 200, seed: int = 2) -> dict:
    from fmkeras.train.checkpoints import CheckpointStore, pack
    rng = random.Random(seed)
    started = time.monotonic()
    recovered, wrong, counts = 0, [], {d: 0 for d in DAMAGES}
    for i in range(rounds):
        directory = os.path.join(workdir, "store")
        shutil.rmtree(directory, ignore_errors=True)
        store = CheckpointStore(directory)
        arrays = {step: {"w": np.random.default_rng(step + i).normal(size=(8, 8)).astype(np.float32)}
                  for step in (10, 20)}
        for step, value in arrays.items():
            store.save(step, value, {"epoch": step})
        damage = DAMAGES[i % len(DAMAGES)]
        counts[damage] += 1
        newest = store.path_for(20)
        data = bytearray(open(newest, "rb").read())
        expected_step = 10
        if damage == "truncate":
            data = data[: rng.randrange(len(data))]
        elif damage == "bitflip":
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif damage == "garbage":
            data = bytearray(rng.randbytes(len(data)))
        elif damage == "empty":
            data = bytearray()
        if damage == "temp_only":
            blob = pack({"w": np.zeros((8, 8), np.float32)}, {"global_step": 30})
            with open(os.path.join(directory, f".step-{30:010d}.ckpt.tmp-1"), "wb") as fh:
                fh.write(blob[: rng.randrange(len(blob))])
            expected_step = 20
        else:
            with open(newest, "wb") as fh:
                fh.write(bytes(data))
        found = store.load_latest()
        ok = (found.meta["global_step"] == expected_step
              and np.array_equal(found.arrays["w"], arrays[expected_step]["w"])
              and len(found.rejected) == (0 if damage == "temp_only" else 1))
        recovered += ok
        if not ok:
            wrong.append({"round": i, "damage": damage, "loaded": found.meta["global_step"]})
    return {"rounds": rounds, "damages": counts, "recovered": recovered, "wrong_state_loaded": wrong,
            "bytes_lost": 0 if not wrong else None, "seconds": round(time.monotonic() - started, 2),
            "ok": recovered == rounds}
