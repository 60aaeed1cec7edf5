"""fmkeras/atomic_files.py and its users: writes that cannot tear, run directories never shared."""
import json
import os
import threading

import pytest

from fmkeras.atomic_files import write_json, write_with


@pytest.fixture
def events(monkeypatch):
    """Records fsyncs (by path) and renames in order."""
    log = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename

    def fsync(fd):
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", lambda a, b: (log.append(("replace", str(b))), real_replace(a, b))[1])
    monkeypatch.setattr(os, "rename", lambda a, b: (log.append(("rename", str(b))), real_rename(a, b))[1])
    return log


def test_file_is_fsynced_before_the_replace_and_its_directory_after(tmp_path, events):
    target = tmp_path / "metrics.json"
    write_json(str(target), {"accuracy": 0.9})
    assert json.loads(target.read_text()) == {"accuracy": 0.9}
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(str(tmp_path / ".metrics.")) and events[2][1] == str(tmp_path)


def test_concurrent_writers_never_share_a_temp_file(tmp_path):
    target, errors = str(tmp_path / "config.json"), []

    def writer(n):
        try:
            for i in range(100):
                write_json(target, {"writer": n, "i": i, "pad": "x" * 5000})
        except Exception as err:  # noqa: BLE001 - a shared temp name fails here (FileNotFoundError)
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and json.loads(open(target).read())["i"] == 99
    assert os.listdir(tmp_path) == ["config.json"]  # no temp file left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old model")

    def crash(tmp):
        assert tmp.endswith(".keras")  # Keras insists on the suffix
        with open(tmp, "wb") as fh:
            fh.write(b"half a mod")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_with(crash, str(target))
    assert target.read_bytes() == b"old model" and os.listdir(tmp_path) == ["model.keras"]


def test_model_keras_and_its_sidecar_are_written_atomically(tmp_path, events):
    import keras

    from fmkeras.model_files.weight_hashes import verify_sidecar, write_sha256_sidecar
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = str(tmp_path / "model.keras")
    write_with(model.save, path)
    write_sha256_sidecar(path)
    assert verify_sidecar(path) and keras.saving.load_model(path).output_shape == (None, 1)
    replaced = [target for kind, target in events if kind == "replace"]
    assert replaced == [path, path + ".sha256"]


def test_an_export_is_fsynced_file_by_file_before_its_rename(tmp_path, events):
    from fmkeras.export.versions import publish_version

    def write(tmp):
        os.makedirs(os.path.join(tmp, "variables"))
        for name in ("saved_model.pb", "variables/variables.index", "fmkeras.json"):
            with open(os.path.join(tmp, name), "w") as fh:
                fh.write(name)

    version, path = publish_version(str(tmp_path / "m"), write)
    rename = next(i for i, (kind, _) in enumerate(events) if kind == "rename")
    synced_before = {os.path.basename(p) for kind, p in events[:rename] if kind == "fsync"}
    assert {"saved_model.pb", "variables.index", "fmkeras.json", "variables"} <= synced_before
    assert events[rename + 1] == ("fsync", str(tmp_path / "m"))  # the rename itself made durable


def test_runs_started_in_the_same_second_never_share_a_directory(tmp_path):
    from fmkeras.config import RunConfig
    from fmkeras.experiment import make_run_dir
    for trial in range(10):  # the old exists-then-makedirs check shared a directory in about half the trials
        cfg = RunConfig(name=f"same{trial}", run_root=str(tmp_path))
        made, barrier = [], threading.Barrier(8)

        def start():
            barrier.wait()
            made.append(make_run_dir(cfg))

        threads = [threading.Thread(target=start) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(made)) == 8 and all(os.path.isdir(os.path.join(p, "plots")) for p in made)
