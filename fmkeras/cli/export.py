"""`fmkeras export`: export a finished run as the next SavedModel version."""
from __future__ import annotations

from fmkeras.cli.flags import FLAGS
from fmkeras.errors import UserError

HELP = "export a finished run as the next SavedModel version: fmkeras export --run_dir=runs/..."


def run() -> dict:
    from fmkeras.cli.model_io import export
    from fmkeras.config import RunConfig, apply_overrides
    if not (FLAGS.run_dir or FLAGS.model):
        raise UserError("export needs --run_dir=RUN_DIR")
    overrides = {"export.base_dir": FLAGS.export_dir, "export.model_name": FLAGS.model_name}
    cfg = apply_overrides(RunConfig(), {k: v for k, v in overrides.items() if v})
    return export(FLAGS.run_dir or FLAGS.model, cfg)
