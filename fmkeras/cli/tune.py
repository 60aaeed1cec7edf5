"""`fmkeras tune`: a resumable keras-tuner search over `tune.space`; retrains and exports the best trial."""
from __future__ import annotations

from fmkeras.cli.flags import config_from_flags

HELP = ("search hyperparameters declared in tune.space (rerun to resume): "
        "fmkeras tune --recipe=cnn_fashion_tune --max_trials=8 (text: --recipe=text_debian)")


def run() -> dict:
    from fmkeras.config import TuneRunConfig
    from fmkeras.tune import run_search
    summary = run_search(config_from_flags(TuneRunConfig))
    if summary.get("role") == "worker":
        print(f"tuning worker {summary['tuner_id']} ran trials: {', '.join(summary['trials_run']) or 'none'}")
        return summary
    best = summary["best"] or {}
    print(f"trials: {summary['num_completed']}/{summary['num_trials']} completed "
          f"({len(summary['trials_run_by_this_search'])} run now); summary: {summary['summary_path']}")
    print(f"best trial {best.get('trial_id')}: {summary['objective']}={best.get('score')} {best.get('values')}")
    retrained = summary.get("retrained")
    if retrained:
        print(f"best retrained on train+val: test accuracy {(retrained.get('test') or {}).get('accuracy')}; "
              f"exported: {retrained.get('export', {}).get('path')}")
    return summary
