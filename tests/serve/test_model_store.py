"""fmkeras/serve/model_store.py: version policy, incomplete and broken versions."""
import os
import shutil
import time

import pytest

from fmkeras.serve import ModelStore, is_complete
from fmkeras.serve.status import NotFound


@pytest.fixture
def versions_dir(tmp_path, base_path):
    """Copies of versions 1 and 2 plus a temp dir and an incomplete version 3."""
    base = tmp_path / "fashion"
    for v in ("1", "2"):
        shutil.copytree(os.path.join(base_path, v), base / v)
    shutil.copytree(os.path.join(base_path, "1"), base / ".tmp-export-abc")
    shutil.copytree(os.path.join(base_path, "1"), base / "3")
    os.remove(base / "3" / "fmkeras.json")  # the export writes it last: 3 is still being written
    return base


def test_latest_policy_skips_incomplete_and_temp_dirs(versions_dir):
    assert not is_complete(str(versions_dir / "3")) and is_complete(str(versions_dir / "2"))
    store = ModelStore(str(versions_dir))
    assert store.name == "fashion" and store.refresh() == [2]
    assert store.get().version == 2
    with pytest.raises(NotFound, match=r"Specific\(fashion, 1\)"):
        store.get(1)
    shutil.copy(versions_dir / "1" / "fmkeras.json", versions_dir / "3" / "fmkeras.json")
    assert store.refresh() == [3] and store.get().version == 3
    assert [(s["version"], s["state"]) for s in store.status()] == [("3", "AVAILABLE"), ("2", "END")]


def test_pinned_versions_and_labels(versions_dir):
    store = ModelStore(str(versions_dir), "fm", versions=(1, 2, 9), labels={"stable": 1, "canary": 2})
    assert store.refresh() == [1, 2]
    assert store.get(label="stable").version == 1 and store.get(label="canary").version == 2
    assert store.get().version == 2
    with pytest.raises(NotFound, match="label: beta"):
        store.get(label="beta")


def test_broken_new_version_is_reported_and_old_one_kept(versions_dir):
    store = ModelStore(str(versions_dir))
    assert store.refresh() == [2]
    shutil.copytree(versions_dir / "2", versions_dir / "4")
    broken = versions_dir / "4" / "saved_model.pb"  # same size, so the manifest in fmkeras.json still matches
    broken.write_bytes(b"not a protobuf".ljust(broken.stat().st_size, b"!"))
    assert store.refresh() == [2]
    status = {s["version"]: s for s in store.status()}
    assert status["4"]["state"] == "END" and "failed to load" in status["4"]["status"]["error_message"]
    assert status["2"]["state"] == "AVAILABLE"
    assert store.refresh() == [2]  # unchanged broken files are not retried on every poll


def test_status_of_a_broken_version_does_not_reveal_where_it_lives(versions_dir):
    store = ModelStore(str(versions_dir))
    store.refresh()
    shutil.copytree(versions_dir / "2", versions_dir / "4")
    index = versions_dir / "4" / "variables" / "variables.index"
    index.write_bytes(b"not a table".ljust(index.stat().st_size, b"!"))
    store.refresh()
    message = {s["version"]: s for s in store.status()}["4"]["status"]["error_message"]
    assert message.startswith("failed to load version 4:"), message
    assert str(versions_dir) not in message and os.path.realpath(str(versions_dir)) not in message


def test_the_version_watcher_survives_any_exception(versions_dir, caplog):
    store = ModelStore(str(versions_dir), poll_seconds=0.05)
    calls = []
    real_refresh = store.refresh

    def flaky():
        calls.append(1)
        if len(calls) in (2, 3):  # the first call is start()'s own load
            raise RuntimeError("a bug in a refresh")  # not an OSError: the old watcher died here
        return real_refresh()

    store.refresh = flaky
    store.start()
    try:
        deadline = time.monotonic() + 10
        while len(calls) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(calls) >= 5 and store._thread.is_alive()
        assert store.watch_errors == 2 and "a bug in a refresh" in caplog.text
        assert store.get().version == 2  # the polls after the failures loaded the latest version
    finally:
        store.stop()


def test_error_texts_lose_absolute_paths():
    from fmkeras.serve.status import redact_paths
    text = "Unable to open table file /srv/models/fashion/4/variables/variables.index: Data loss"
    assert redact_paths(text) == "Unable to open table file <path>: Data loss"
