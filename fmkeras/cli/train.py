"""`fmkeras train`: resolve the config from flags, then train, evaluate and export."""
from __future__ import annotations

import os
import sys

from fmkeras.cli.flags import FLAGS, config_from_flags

HELP = "train (+ evaluate + export) a recipe or config: fmkeras train --recipe=cnn_fashion --epochs=3"


# Exit status after SIGTERM stopped training with a checkpoint (128 + SIGTERM, as shells report it).
INTERRUPTED_EXIT = 143


def run() -> dict:
    from fmkeras.experiment import run_training
    from fmkeras.train.resume import TrainingInterrupted
    try:
        cfg = config_from_flags()
        report = run_training(cfg)
    except TrainingInterrupted as err:
        run_dir = os.path.dirname(os.path.dirname(os.path.dirname(err.checkpoint)))  # <run_dir>/resume/<stage>/
        print(f"fmkeras: {err} (with --run_dir={run_dir})", file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT) from None
    print(f"run directory: {report['run_dir']}")
    if report.get("test"):  # the task says what its report's headline is (accuracy, or mAP for multi-label)
        from fmkeras.tasks import task_for_source
        summary = task_for_source(cfg.data.source).summary(report["test"])
        print(f"{report['evaluated_on']} {summary}  (train {report['train_seconds']} s)")
    else:
        print(f"no test or validation split to evaluate on  (train {report['train_seconds']} s)")
    if report["export"]:
        print(f"exported: {report['export']['path']}")
    return report
