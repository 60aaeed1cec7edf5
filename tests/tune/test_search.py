"""fmkeras tune: search, summary, retrain+export; resume after a kill; keras-tuner chief + 2 workers."""
from __future__ import annotations

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras_tuner
import pytest
import yaml
from keras_tuner.src import backend as keras_tuner_backend

import fmkeras.atomic_files
from fmkeras.config import TuneRunConfig, from_dict, validate
from fmkeras.data import load_source
from fmkeras.errors import ConfigError
from fmkeras.tune import FinetuneHyperModel, build_tuner, run_search

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
SPACE = {
    "train.learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"},
    "finetune.learning_rate": {"min": 1e-5, "max": 1e-3, "sampling": "log"},
    "finetune.unfreeze_layers": {"min": 0, "max": 4, "step": 2},
    "model.head.dense_units": [8, 16],
    "model.head.dropout": {"min": 0.0, "max": 0.3},
    "train.weight_decay": [0.0, 1e-4],
    "train.optimizer": ["adam", "sgd"],
    "augment_strength": {"min": 0.0, "max": 1.0},
    "train.batch_size": [16, 32],
}


def tune_values(tmp_path, npz: str, **tune) -> dict:
    """A tiny search: 256 real Fashion-MNIST images, 1 head epoch + 1 fine-tuning epoch per trial."""
    return {
        "name": "search",
        "data": {"source": f"npz:{npz}", "limit_train": 256, "limit_test": 64, "validation_split": 0.25},
        "model": {"backbone": "cnn", "backbone_options": {"filters": [4, 8]}, "head": {"dense_units": [8]}},
        "train": {"epochs": 1, "batch_size": 32, "verbose": 0},
        "finetune": {"freeze_backbone": True, "epochs": 1},
        "export": {"base_dir": str(tmp_path / "saved_models")},
        "tune": {"directory": str(tmp_path / "tune"), "space": SPACE, **tune},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_hyperband_search_writes_summary_plot_and_retrains_best_on_train_plus_val(tmp_path, fashion_npz):
    cfg = validate(from_dict(TuneRunConfig, tune_values(tmp_path, fashion_npz, algorithm="hyperband", max_epochs=2,
                                                    hyperband_factor=2)))
    summary = run_search(cfg)
    out = str(tmp_path / "tune" / "search")
    on_disk = json.load(open(os.path.join(out, "summary.json")))
    assert on_disk["num_completed"] == on_disk["num_trials"] >= 3
    assert sorted(on_disk["trials_run_by_this_search"]) == [t["trial_id"] for t in on_disk["trials"]]
    scores = [t["score"] for t in on_disk["trials"]]
    assert on_disk["best"]["score"] == max(scores) and 0.0 <= max(scores) <= 1.0
    for trial in on_disk["trials"]:
        values = trial["values"]
        assert set(SPACE) <= set(values) and 1e-3 <= values["train.learning_rate"] <= 1e-2
        run = os.path.join(out, f"trial_{trial['trial_id']}", "run")
        # fit_stages: <run>/history.csv holds stage 1 (and stage 2 once both ran); a continued trial
        # that starts in stage 2 has only <run>/finetune/history.csv.
        log = next(p for p in (os.path.join(run, "history.csv"), os.path.join(run, "finetune", "history.csv"))
                   if os.path.isfile(p))
        epochs = len(open(log).read().splitlines()) - 1
        assert epochs == values["tuner/epochs"] - values["tuner/initial_epoch"]  # Hyperband's budget, both stages
    assert any(t["values"]["tuner/initial_epoch"] > 0 for t in on_disk["trials"])  # a continued trial
    with open(os.path.join(out, "trial_scores.png"), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    retrained = summary["retrained"]
    assert retrained["num_train"] == 256 + 64  # the search's 256 training + 64 validation images
    assert len(retrained["history"]["loss"]) == on_disk["best"]["values"]["tuner/epochs"]
    assert "val_loss" not in retrained["history"] and 0.0 <= retrained["test"]["accuracy"] <= 1.0
    assert os.path.isfile(os.path.join(retrained["export"]["path"], "saved_model.pb"))
    best_cfg = json.load(open(os.path.join(out, "best", "config.json")))
    assert best_cfg["train"]["learning_rate"] == on_disk["best"]["values"]["train.learning_rate"]


@pytest.mark.parametrize("algorithm, tuner_class", [
    ("random", keras_tuner.RandomSearch), ("bayesian", keras_tuner.BayesianOptimization),
    ("hyperband", keras_tuner.Hyperband)])
def test_algorithm_selects_the_keras_tuner_class(tmp_path, fashion_npz, algorithm, tuner_class):
    cfg = validate(from_dict(TuneRunConfig, tune_values(tmp_path, fashion_npz, algorithm=algorithm, max_trials=7,
                                                    max_epochs=3)))
    tuner = build_tuner(cfg, FinetuneHyperModel(cfg, load_source(cfg.data)))
    assert isinstance(tuner, tuner_class)
    assert tuner.project_dir == str(tmp_path / "tune" / "search")
    if algorithm == "hyperband":
        assert tuner.oracle.max_epochs == 3
    else:
        assert tuner.oracle.max_trials == 7
    assert {p.name for p in tuner.oracle.get_space().space} == set(SPACE)


class _Killed(BaseException):
    pass


def test_a_kill_while_the_tuner_saves_its_state_keeps_the_last_complete_file(tmp_path, fashion_npz, monkeypatch):
    """keras-tuner opens oracle.json with "w" and then writes it: a kill in between left an empty file that the
    rerun could not reload. Here the search is killed at that moment in both ways of writing oracle.json:
    keras-tuner's own (after the open, before the write) and fmkeras' (temp file written, not yet renamed)."""
    cfg = validate(from_dict(TuneRunConfig, tune_values(tmp_path, fashion_npz, max_trials=3)))
    tuner = build_tuner(cfg, FinetuneHyperModel(cfg, load_source(cfg.data)))
    oracle_json = os.path.join(tuner.project_dir, "oracle.json")
    tuner.oracle.save()
    before = open(oracle_json).read()
    assert json.loads(before)["ongoing_trials"] == {}

    class FileTornAtOracleJson:
        def __init__(self, path, mode):
            self.path, self.fh = path, open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            if os.path.basename(self.path) == "oracle.json":
                raise _Killed()
            return self.fh.write(text)

    real_fsync = fmkeras.atomic_files.fsync_file

    def fsync_killed_at_oracle_json(path):
        if os.path.basename(path).startswith(".oracle."):
            raise _Killed()
        real_fsync(path)

    monkeypatch.setattr(keras_tuner_backend.io, "File", FileTornAtOracleJson)
    monkeypatch.setattr(fmkeras.atomic_files, "fsync_file", fsync_killed_at_oracle_json)
    with pytest.raises(_Killed):
        tuner.search()  # saves trial_0/trial.json, then the oracle (killed)
    assert open(oracle_json).read() == before
    assert json.load(open(os.path.join(tuner.project_dir, "trial_0", "trial.json")))["trial_id"] == "0"
    assert not [name for name in os.listdir(tuner.project_dir) if name.startswith(".")]


def test_resuming_from_a_torn_state_file_names_it_and_deletes_nothing(tmp_path, fashion_npz):
    cfg = validate(from_dict(TuneRunConfig, tune_values(tmp_path, fashion_npz, max_trials=2)))
    tuner = build_tuner(cfg, FinetuneHyperModel(cfg, load_source(cfg.data)))
    tuner.save()  # oracle.json and tuner0.json: the state a rerun reloads
    oracle_json = os.path.join(tuner.project_dir, "oracle.json")
    open(oracle_json, "w").close()  # what a kill between keras-tuner's open("w") and write left behind
    with pytest.raises(ConfigError, match=r"search/oracle.json is not valid JSON.*tune.overwrite=true"):
        run_search(cfg)
    assert os.path.getsize(oracle_json) == 0 and os.path.isfile(os.path.join(tuner.project_dir, "tuner0.json"))


def _completed(project: str) -> dict:
    done = {}
    for path in glob.glob(os.path.join(project, "trial_*", "trial.json")):
        try:
            trial = json.load(open(path))
        except json.JSONDecodeError:  # being written right now
            continue
        if trial["status"] == "COMPLETED":
            done[trial["trial_id"]] = trial
    return done


@pytest.mark.slow
def test_killed_search_resumes_without_rerunning_finished_trials(tmp_path, fashion_npz):
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(tune_values(tmp_path, fashion_npz, max_trials=4, retrain=False)))
    project = str(tmp_path / "tune" / "search")
    command = [sys.executable, "-m", "fmkeras", "tune", f"--config={config}"]
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(command, env=ENV, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while len(_completed(project)) < 2:
            assert proc.poll() is None, "search ended before the kill:\n" + open(tmp_path / "first.log").read()[-3000:]
            assert time.monotonic() < deadline, "2 trials did not finish in 180 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _completed(project)
    assert 2 <= len(before) < 4

    second = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.load(open(os.path.join(project, "summary.json")))
    assert [t["trial_id"] for t in summary["trials"]] == ["0", "1", "2", "3"]
    assert summary["num_completed"] == 4
    rerun = set(summary["trials_run_by_this_search"])
    assert rerun.isdisjoint(before) and rerun | set(before) == {"0", "1", "2", "3"}
    after = _completed(project)
    for trial_id, trial in before.items():  # finished trials kept their values and scores
        assert after[trial_id]["hyperparameters"]["values"] == trial["hyperparameters"]["values"]
        assert after[trial_id]["score"] == trial["score"]


@pytest.mark.slow
def test_distributed_search_one_chief_two_workers(tmp_path, fashion_npz):
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(tune_values(tmp_path, fashion_npz, max_trials=6, retrain=False)))
    port = _free_port()
    command = [sys.executable, "-m", "fmkeras", "tune", f"--config={config}"]
    procs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = {**ENV, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": str(port)}
        log = open(tmp_path / f"{tuner_id}.log", "w")
        procs[tuner_id] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        if tuner_id == "chief":
            time.sleep(1)  # the workers retry until the oracle answers; a head start avoids noise
    try:
        for tuner_id, proc in procs.items():
            assert proc.wait(timeout=240) == 0, open(tmp_path / f"{tuner_id}.log").read()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    ran = {}
    for tuner_id in ("tuner0", "tuner1"):
        line = [x for x in open(tmp_path / f"{tuner_id}.log").read().splitlines() if "ran trials:" in x][-1]
        ran[tuner_id] = {t.strip() for t in line.split("ran trials:")[1].split(",") if t.strip() != "none"}
    assert ran["tuner0"].isdisjoint(ran["tuner1"]) and ran["tuner0"] and ran["tuner1"]  # both did work
    summary = json.load(open(tmp_path / "tune" / "search" / "summary.json"))  # written by the chief
    assert summary["num_completed"] == 6 and summary["trials_run_by_this_search"] == []
    assert ran["tuner0"] | ran["tuner1"] == {t["trial_id"] for t in summary["trials"]}
