"""fmkeras/data/cache_files.py: a run killed while filling a file cache does not break the next run."""
import fcntl
import os
import subprocess
import sys
import textwrap

import numpy as np

from fmkeras.config import DataConfig
from fmkeras.data.cache_files import claim_cache_prefix
from fmkeras.data.pipeline import build_datasets
from fmkeras.data.sources import load_source

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = textwrap.dedent("""
    import os, signal, sys
    from fmkeras.config import DataConfig
    from fmkeras.data.pipeline import build_datasets
    from fmkeras.data.sources import load_source
    cfg = DataConfig(source="npz:" + sys.argv[1], validation_split=0.25, cache=sys.argv[2])
    data = build_datasets(load_source(cfg), cfg, batch_size=8)
    batches = iter(data.val)  # kept alive: a finished iterator cleans up after itself
    next(batches)  # the val cache is half written ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... when the run dies
""")


def test_next_run_recovers_from_a_cache_write_killed_midway(tmp_path):
    # Enough images that one batch (plus prefetching) cannot finish the validation cache.
    rng = np.random.default_rng(0)
    npz = str(tmp_path / "many.npz")
    np.savez(npz, x_train=rng.integers(0, 256, (16000, 8, 8, 1), dtype=np.uint8),
             y_train=rng.integers(0, 3, 16000))
    cache = str(tmp_path / "cache") + "/"
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    child = subprocess.run([sys.executable, "-c", CHILD, npz, cache], env=env, timeout=120)
    assert child.returncode == -9
    left = os.listdir(cache)
    assert any(name.endswith(".lockfile") for name in left), left  # what used to break every later run
    cfg = DataConfig(source=f"npz:{npz}", validation_split=0.25, cache=cache)
    data = build_datasets(load_source(cfg), cfg, batch_size=8)
    assert sum(int(x.shape[0]) for x, _ in data.val) == 4000
    names = os.listdir(cache)
    assert not [n for n in names if n.endswith(".lockfile") or ".tempstate" in n], names
    assert any(n.startswith("val-") and n.endswith(".index") for n in names), names  # now complete


def test_prefix_owned_by_another_process_falls_back_to_memory(tmp_path):
    prefix = str(tmp_path / "train-0123")
    with open(prefix + ".owner", "a+") as other:  # a separate open file description = another owner
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        open(prefix + "_0.lockfile", "w").close()
        assert claim_cache_prefix(prefix) is None
        assert os.path.exists(prefix + "_0.lockfile")  # never deletes a live writer's lock
    assert claim_cache_prefix(prefix) == prefix and not os.path.exists(prefix + "_0.lockfile")
