"""The search driver: a resumable keras-tuner search over `tune.space`, then the best trial retrained.

Results live in `<tune.directory>/<tune.project_name or name>/`: keras-tuner's own state (oracle.json,
trial_*/trial.json, per-trial run directories), summary.json, trial_scores.png and best/ (the best
configuration retrained on train+val, evaluated on test and exported). Rerunning the same command
reloads that state (`tune.overwrite=false`): finished trials are kept, an interrupted one is rerun.
Text sources (`data.source=text:...`) search the same way; each trial trains one text classifier
(fmkeras.tune.hypermodel.TextHyperModel) and the retrain applies `model.ensemble`/`text.linear_member`.

Distributed tuning is keras-tuner's chief/worker mode: the chief process (KERASTUNER_TUNER_ID=chief)
serves the oracle on KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT, every worker (KERASTUNER_TUNER_ID=
tuner0, tuner1, ...) asks it for trials and runs them; all share `tune.directory`. The chief writes the
summary and retrains the best trial once every worker is done.

Example:
    summary = run_search(load_config("tune.yaml"))   # a TuneRunConfig: the file has a `tune:` section
    print(summary["best"]["score"], summary["best"]["values"])
"""
from __future__ import annotations

import contextlib
import glob
import json
import logging
import os

import keras_tuner
from keras_tuner.src import utils as keras_tuner_utils

from fmkeras.atomic_files import write_bytes
from fmkeras.config import TuneRunConfig
from fmkeras.errors import ConfigError
from fmkeras.evaluate import write_json
from fmkeras.tasks import check_command, task_for_source
from fmkeras.train import restores_dtype_policy
from fmkeras.train.strategy import resolve_strategy_name
from fmkeras.tune.hypermodel import hypermodel_for, objective_direction
from fmkeras.tune.report import plot_trial_scores, summarize_trials
from fmkeras.tune.retrain import retrain_best
from fmkeras.tune.space import trial_config

log = logging.getLogger("fmkeras")
ALGORITHMS = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization,
              "hyperband": keras_tuner.Hyperband}


class _TrialRecorder:
    """Mixed into a keras-tuner Tuner: gives each trial its own run directory, records which trials this
    process finished (a resumed search must not rerun finished ones) and writes the tuner's state files
    atomically (atomic_tuner_state)."""

    def __init__(self, *args, **kwargs):
        self.trials_run = []
        with atomic_tuner_state():
            super().__init__(*args, **kwargs)

    def search(self, *args, **kwargs):
        with atomic_tuner_state():
            return super().search(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        kwargs["trial_dir"] = os.path.join(self.get_trial_dir(trial.trial_id), "run")
        return super().run_trial(trial, *args, **kwargs)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self.trials_run.append(trial.trial_id)


def project_dir(cfg: TuneRunConfig) -> str:
    return os.path.join(cfg.tune.directory, cfg.tune.project_name or cfg.name)


@contextlib.contextmanager
def atomic_tuner_state():
    """While active, keras-tuner's state files (oracle.json, tuner0.json, trial_*/trial.json) are written
    atomically. keras-tuner writes them in place (`keras_tuner.src.utils.save_json`: open "w", then write), so a
    search killed between the two left an empty oracle.json that the rerun could not reload
    (JSONDecodeError). Every state write goes through that one function; local paths now go through
    fmkeras.atomic_files (temp file, fsync, rename); remote ones (gs://...) keep keras-tuner's write."""
    original = keras_tuner_utils.save_json

    def save_json(path, obj):
        if "://" in str(path):
            return original(path, obj)
        text = json.dumps(obj)
        write_bytes(str(path), text.encode("utf-8"))
        return text

    keras_tuner_utils.save_json = save_json
    try:
        yield
    finally:
        keras_tuner_utils.save_json = original


def check_tuner_state(project: str):
    """ConfigError naming the file when a state file that resuming the search in `project` would reload is not
    JSON (a search killed mid-write by an fmkeras before atomic_tuner_state, or a file edited by hand); nothing
    is deleted. keras-tuner reloads a project once its tuner file (tuner0.json) exists."""
    tuner_files = glob.glob(os.path.join(project, "tuner*.json"))
    if not tuner_files:
        return
    for path in [os.path.join(project, "oracle.json"), *tuner_files,
                 *glob.glob(os.path.join(project, "trial_*", "trial.json"))]:
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                json.load(fh)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot resume the search in {project}: {path} is not valid JSON ({exc}). Start "
                              f"over with --set=tune.overwrite=true (which deletes {project}), or keep it and search "
                              f"into another --set=tune.project_name=NAME.") from None


def build_tuner(cfg: TuneRunConfig, hypermodel) -> keras_tuner.Tuner:
    """The `tune.algorithm` tuner writing to project_dir(cfg), resuming what is there unless overwrite (a state
    file there that is not JSON: ConfigError, check_tuner_state)."""
    t = cfg.tune
    if not t.overwrite:
        check_tuner_state(project_dir(cfg))
    base = ALGORITHMS[t.algorithm]
    kwargs = dict(objective=keras_tuner.Objective(t.objective, objective_direction(t.objective)),
                  executions_per_trial=t.executions_per_trial, directory=t.directory,
                  project_name=t.project_name or cfg.name, overwrite=t.overwrite, seed=cfg.train.seed)
    if t.algorithm == "hyperband":
        kwargs.update(max_epochs=t.max_epochs, factor=t.hyperband_factor)
    else:
        kwargs.update(max_trials=t.max_trials)
    tuner_class = type(f"Fmkeras{base.__name__}", (_TrialRecorder, base), {})
    return tuner_class(hypermodel, **kwargs)


def is_tuning_worker() -> bool:
    """True in a distributed search's worker processes (they run trials; the chief reports). The roles come from
    keras-tuner's documented environment variables: KERASTUNER_ORACLE_IP set, KERASTUNER_TUNER_ID not "chief"."""
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", "chief")


@restores_dtype_policy
def run_search(cfg: TuneRunConfig) -> dict:
    """Runs (or resumes) the search of `cfg`; on the chief/single process also summarizes and retrains."""
    if not isinstance(cfg, TuneRunConfig):
        raise ConfigError(f"run_search needs a TuneRunConfig (a RunConfig with a `tune` section), e.g. "
                          f"load_recipe(name, TuneRunConfig). Received: {type(cfg).__name__}")
    if not cfg.tune.space:
        raise ConfigError("`tune.space` is empty: declare hyperparameters, e.g. "
                          "tune.space: {train.learning_rate: {min: 1.0e-4, max: 1.0e-2, sampling: log}}")
    if cfg.distribute.strategy not in ("auto", "default"):
        raise ConfigError(f"`fmkeras tune` trains each trial on one device; distribute a search over processes with "
                          f"keras-tuner workers (KERASTUNER_TUNER_ID/ORACLE_IP/ORACLE_PORT) instead. "
                          f"Received: distribute.strategy={cfg.distribute.strategy!r}")
    if resolve_strategy_name(cfg.distribute) != "default":
        log.warning("distribute.strategy=auto would pick %s; tuning trials run on one device each",
                    resolve_strategy_name(cfg.distribute))
    task = task_for_source(cfg.data.source)
    check_command(task, "tune", cfg.data.source)
    task.check_config(cfg)
    source = task.load_source(cfg)
    tuner = build_tuner(cfg, hypermodel_for(cfg, source, task))
    tuner.search(verbose=min(cfg.train.verbose, 1))
    if is_tuning_worker():
        return {"role": "worker", "tuner_id": tuner.tuner_id, "trials_run": tuner.trials_run}
    out = project_dir(cfg)
    summary = summarize_trials(tuner.oracle, cfg)
    summary["trials_run_by_this_search"] = tuner.trials_run
    summary["plot"] = plot_trial_scores(summary, os.path.join(out, "trial_scores.png"))
    best = summary["best"]
    if best and cfg.tune.retrain:
        best_cfg = trial_config(cfg, best["values"])
        summary["retrained"] = retrain_best(best_cfg, source, os.path.join(out, "best"),
                                            total_epochs=best["values"].get("tuner/epochs"))
    write_json(os.path.join(out, "summary.json"), summary)
    summary["summary_path"] = os.path.join(out, "summary.json")
    return summary
