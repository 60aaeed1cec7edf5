"""fmkeras: transfer learning with foundation models (TensorFlow/Keras 3).

Usage: fmkeras COMMAND [--flags]

Commands:
  train      train (+ evaluate + export) a recipe or config: fmkeras train --recipe=cnn_fashion --epochs=3
  evaluate   test a run dir / .keras / SavedModel: fmkeras evaluate --model=runs/cnn_fashion-... [--data=...]
  export     export a finished run as the next SavedModel version: fmkeras export --run_dir=runs/...
  list       list backbones and recipes

Config precedence: --recipe, then --config FILE, then --set section.field=value, then field flags.
User errors (bad config, missing data) print one line and exit with status 2.
"""
from __future__ import annotations

import logging
import sys

from absl import app
from absl import logging as absl_logging

from fmkeras.cli import flags as fm_flags
from fmkeras.errors import UserError

FLAGS = fm_flags.FLAGS
COMMANDS = ("train", "evaluate", "export", "list")


def _config():
    from fmkeras.cli.resolve import resolve_config
    fields = {field: getattr(FLAGS, flag) for flag, field in fm_flags.FIELD_FLAGS.items()}
    return resolve_config(FLAGS.recipe, FLAGS.config, FLAGS.set, fields)


def _dispatch(command: str):
    from fmkeras.cli import commands
    if command == "train":
        return commands.train(_config())
    if command == "list":
        from fmkeras.backbones import get_backbone, list_backbones
        from fmkeras.recipes import list_recipes
        print("backbones:")
        for name in list_backbones():
            print(f"  {name:12s} {get_backbone(name).description}")
        print("recipes:")
        for name in list_recipes():
            print(f"  {name}")
        return None
    if command == "evaluate":
        if not FLAGS.model:
            raise UserError("evaluate needs --model=RUN_DIR|FILE.keras|SAVED_MODEL_DIR")
        data_cfg = _config().data if (FLAGS.data or FLAGS.config or FLAGS.set) else None
        return commands.evaluate(FLAGS.model, data_cfg)
    if command == "export":
        if not (FLAGS.run_dir or FLAGS.model):
            raise UserError("export needs --run_dir=RUN_DIR")
        from fmkeras.config import RunConfig, apply_overrides
        cfg = apply_overrides(RunConfig(), {k: v for k, v in {"export.base_dir": FLAGS.export_dir,
                                                               "export.model_name": FLAGS.model_name}.items() if v})
        return commands.export(FLAGS.run_dir or FLAGS.model, cfg)
    raise UserError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    if len(argv) > 2:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[2:])}")
    logging.getLogger("fmkeras").setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.WARNING)  # TF's SavedModel writer logs every asset at INFO
    try:
        _dispatch(argv[1])
    except UserError as err:
        if FLAGS.verbose_errors:
            raise
        print(f"fmkeras: error: {err}", file=sys.stderr)
        return 2
    return 0


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
