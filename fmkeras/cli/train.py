"""`fmkeras train`: resolve the config from flags, then train, evaluate and export."""
from __future__ import annotations

from fmkeras.cli.flags import FLAGS, config_from_flags

HELP = "train (+ evaluate + export) a recipe or config: fmkeras train --recipe=cnn_fashion --epochs=3"


def run() -> dict:
    from fmkeras.experiment import run_training
    report = run_training(config_from_flags())
    test = report.get("test") or {}
    print(f"run directory: {report['run_dir']}")
    print(f"{report['evaluated_on']} accuracy: {test.get('accuracy')}  (train {report['train_seconds']} s)")
    if "export" in report:
        print(f"exported: {report['export']['path']}")
    return report
