"""`fmkeras evaluate`: test a run directory, .keras file or SavedModel on a data source."""
from __future__ import annotations

from fmkeras.cli.flags import FLAGS, config_from_flags
from fmkeras.errors import UserError

HELP = ("test a run dir / .keras / SavedModel: fmkeras evaluate --model=runs/cnn_fashion-... [--data=...]; "
        "average several: --ensemble=RUN_A,SAVED_MODEL_B")


def run() -> dict:
    from fmkeras.cli.model_io import evaluate, evaluate_ensemble
    if FLAGS.ensemble:
        data_cfg = config_from_flags().data if (FLAGS.data or FLAGS.config or FLAGS.set) else None
        return evaluate_ensemble([p.strip() for p in FLAGS.ensemble.split(",") if p.strip()], data_cfg,
                                 FLAGS.run_dir)
    if not FLAGS.model:
        raise UserError("evaluate needs --model=RUN_DIR|FILE.keras|SAVED_MODEL_DIR")
    data_cfg = config_from_flags().data if (FLAGS.data or FLAGS.config or FLAGS.set) else None
    return evaluate(FLAGS.model, data_cfg)
