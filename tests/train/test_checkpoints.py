"""fmkeras/train/checkpoints.py: one self-verifying file per checkpoint; torn files fall back."""
import logging
import os

import numpy as np
import pytest

from fmkeras.train.checkpoints import CheckpointCorrupt, CheckpointStore, pack, unpack


def _store(tmp_path, steps=(2, 4)):
    store = CheckpointStore(str(tmp_path / "ckpt"), keep=2)
    for step in steps:
        store.save(step, {"w": np.full((3, 3), step, np.float32)}, {"epoch": step // 2})
    return store


def test_pack_round_trip_keeps_arrays_and_metadata():
    arrays, meta = unpack(pack({"a": np.arange(5), "b": np.eye(2, dtype=np.float32)}, {"epoch": 3, "x": [1]}))
    np.testing.assert_array_equal(arrays["a"], np.arange(5))
    assert arrays["b"].dtype == np.float32 and meta == {"epoch": 3, "x": [1]}


def test_keeps_newest_two_and_loads_newest(tmp_path):
    store = _store(tmp_path, steps=(2, 4, 6))
    assert store.steps() == [6, 4]
    found = store.load_latest()
    assert found.meta["global_step"] == 6 and found.meta["epoch"] == 3 and found.rejected == []
    assert float(found.arrays["w"][0, 0]) == 6


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "empty", "header_only"])
def test_torn_newest_falls_back_to_previous_with_warning(tmp_path, caplog, damage):
    store = _store(tmp_path)
    path = store.path_for(4)
    data = open(path, "rb").read()
    damaged = {"truncate": data[: len(data) - 7], "empty": b"", "header_only": data[:48],
               "bitflip": data[:100] + bytes([data[100] ^ 0x10]) + data[101:]}[damage]
    open(path, "wb").write(damaged)
    with caplog.at_level(logging.WARNING, logger="fmkeras"):
        found = store.load_latest()
    assert found.meta["global_step"] == 2 and float(found.arrays["w"][0, 0]) == 2
    assert [p for p, _ in found.rejected] == [path]
    assert "corrupt checkpoint" in caplog.text


def test_temp_file_of_a_killed_write_is_ignored_and_cleaned(tmp_path):
    store = _store(tmp_path)
    tmp = os.path.join(store.directory, ".step-0000000006.ckpt.tmp-999")
    open(tmp, "wb").write(pack({"w": np.zeros(3)}, {"global_step": 6})[:50])
    assert store.load_latest().meta["global_step"] == 4
    store.save(6, {"w": np.zeros(3)}, {})
    assert not os.path.exists(tmp) and store.steps() == [6, 4]


def test_every_file_corrupt_is_an_error_not_a_silent_restart(tmp_path):
    store = _store(tmp_path)
    for step in store.steps():
        open(store.path_for(step), "wb").write(b"garbage")
    with pytest.raises(CheckpointCorrupt, match="every checkpoint .* is corrupt.*delete"):
        store.load_latest()


def test_file_renamed_to_another_step_is_rejected(tmp_path):
    store = _store(tmp_path)
    os.replace(store.path_for(2), store.path_for(8))
    found = store.load_latest()
    assert found.meta["global_step"] == 4 and "name says 8" in found.rejected[0][1]
