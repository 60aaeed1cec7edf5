"""fmkeras/train/resume.py: a run stopped at arbitrary steps and resumed equals an uninterrupted run."""
import dataclasses
import os
import signal

import numpy as np
import pytest

from fmkeras.config import AugmentConfig, HeadConfig
from fmkeras.data import build_datasets, load_source
from fmkeras.errors import ConfigError
from fmkeras.train import fit, seed_everything
from fmkeras.train import resume as resume_module
from fmkeras.train.checkpoints import CheckpointStore
from fmkeras.train.resume import TrainingInterrupted
from tests.conftest import tiny_config


class Stop(Exception):
    """Stands in for the process dying right after a step (the subprocess test uses SIGKILL)."""


def _run(tmp_path, run_dir, stop_at=None, term_at=None, **train):
    cfg = tiny_config(tmp_path, **{"deterministic": True, "epochs": 2, "backup_every_steps": 2, **train})
    cfg = dataclasses.replace(  # 192 images / 64 = 3 steps per epoch
        cfg, data=dataclasses.replace(cfg.data, limit_train=192, augment=AugmentConfig(horizontal_flip=True)),
        model=dataclasses.replace(cfg.model, head=HeadConfig(dense_units=(16,), dropout=0.3)))
    seed_everything(cfg.train)
    data = build_datasets(load_source(cfg.data), cfg.data, cfg.train.batch_size)
    from fmkeras.transfer import build_classifier
    model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    original = resume_module.StepCheckpoint.on_train_batch_end

    def hook(self, batch, logs=None):
        step = self._epoch * self.steps + self.batch_offset + batch + 1
        if term_at is not None and step == term_at:
            os.kill(os.getpid(), signal.SIGTERM)
        original(self, batch, logs)
        if stop_at is not None and step == stop_at:
            raise Stop()

    resume_module.StepCheckpoint.on_train_batch_end = hook
    try:
        return model, fit(model, data, cfg.train, str(run_dir))
    finally:
        resume_module.StepCheckpoint.on_train_batch_end = original


@pytest.mark.slow
def test_stopped_resumed_and_sigtermed_run_is_bit_identical(tmp_path):
    base_model, base = _run(tmp_path, tmp_path / "base")
    with pytest.raises(Stop):
        _run(tmp_path, tmp_path / "chain", stop_at=4)   # checkpoints at 2, 3 (epoch end), 4
    store = CheckpointStore(str(tmp_path / "chain" / "resume" / "train"))
    newest = store.path_for(4)
    os.truncate(newest, os.path.getsize(newest) // 2)   # torn newest file: fall back to the epoch boundary
    with pytest.raises(TrainingInterrupted, match="SIGTERM at step 5"):
        _run(tmp_path, tmp_path / "chain", term_at=5)   # resumes at 3; SIGTERM: checkpoint exactly at step 5
    model, result = _run(tmp_path, tmp_path / "chain")
    assert result.resume["resumed_from"]["global_step"] == 5
    assert result.resume["resumed_from"]["epoch"] == 1 and result.resume["resumed_from"]["step"] == 2
    for a, b in zip(base_model.get_weights(), model.get_weights()):  # the best weights fit returns
        np.testing.assert_array_equal(a, b)
    assert result.history == base.history  # epoch logs too (metric accumulators are checkpointed)
    finals = [CheckpointStore(str(tmp_path / run / "resume" / "train")).load_latest() for run in ("base", "chain")]
    assert finals[1].meta["complete"] and finals[1].meta["optimizer_iterations"] == 6
    assert sorted(finals[0].arrays) == sorted(finals[1].arrays)
    for key, value in finals[0].arrays.items():  # last-step weights, optimizer slots, seed states
        np.testing.assert_array_equal(value, finals[1].arrays[key], err_msg=key)
    # The same run_dir with another config must not resume from these checkpoints.
    with pytest.raises(ConfigError, match="different run .*batch_size: 64 now 48"):
        _run(tmp_path, tmp_path / "base", batch_size=48)


def test_backup_off_writes_no_checkpoints(tmp_path):
    _, result = _run(tmp_path, tmp_path / "run", backup_every_steps=0, epochs=1)
    assert result.resume == {"enabled": False} and not os.path.exists(tmp_path / "run" / "resume")


def test_datasets_without_a_step_stream_still_train_without_resume(tmp_path, caplog):
    from fmkeras.transfer import build_classifier
    cfg = tiny_config(tmp_path, epochs=2, backup_every_steps=2)  # asked for, but no stream to resume
    seed_everything(cfg.train)
    data = build_datasets(load_source(cfg.data), cfg.data, cfg.train.batch_size)
    data = dataclasses.replace(data, train_batches=None)  # e.g. a Datasets built by hand
    model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    result = fit(model, data, cfg.train, str(tmp_path / "run"))
    assert len(result.history["loss"]) == 2 and result.resume == {"enabled": False}
    assert int(model.optimizer.iterations) > 0 and "cannot resume" in caplog.text
