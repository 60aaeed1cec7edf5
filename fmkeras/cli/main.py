"""fmkeras: transfer learning with foundation models (TensorFlow/Keras 3).

Usage: fmkeras COMMAND [--flags]     (fmkeras --helpfull lists every flag)

Config precedence: --recipe, then --config FILE, then --set section.field=value, then
field flags such as --epochs. User errors (bad config, missing data) print one line and
exit with status 2.
"""
from __future__ import annotations

import importlib
import logging
import sys

from absl import app
from absl import logging as absl_logging

from fmkeras.cli import data, evaluate, export, listing, serve, train, tune  # noqa: F401  (each defines its flags)
from fmkeras.cli import distill, lowlabel, lr_find, pretrain  # noqa: F401,E402
from fmkeras.cli import predict  # noqa: F401,E402
from fmkeras.cli.flags import FLAGS
from fmkeras.errors import UserError

# Command name -> module with HELP and run(); one line per command.
COMMANDS = {
    "train": "fmkeras.cli.train",
    "evaluate": "fmkeras.cli.evaluate",
    "export": "fmkeras.cli.export",
    "list": "fmkeras.cli.listing",
    "data": "fmkeras.cli.data",
    "serve": "fmkeras.cli.serve",
    "tune": "fmkeras.cli.tune",
    "pretrain": "fmkeras.cli.pretrain",
    "distill": "fmkeras.cli.distill",
    "lowlabel": "fmkeras.cli.lowlabel",
    "predict": "fmkeras.cli.predict",
    "lr_find": "fmkeras.cli.lr_find",
}


def usage() -> str:
    lines = [__doc__.strip(), "", "Commands:"]
    for name, module in COMMANDS.items():
        lines.append(f"  {name:10s} {importlib.import_module(module).HELP}")
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2 or argv[1] in ("help", "-h"):
        print(usage())
        return 0 if len(argv) >= 2 else 2
    module = importlib.import_module(COMMANDS[argv[1]]) if argv[1] in COMMANDS else None
    # Commands with SUBCOMMANDS (e.g. `data preview`) take one more word, TAKES_PATHS ones any; the others none.
    if len(argv) > 2 + bool(getattr(module, "SUBCOMMANDS", None)) and not getattr(module, "TAKES_PATHS", False):
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[2:])}")
    logging.getLogger("fmkeras").setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.WARNING)  # TF's SavedModel writer logs every asset at INFO
    try:
        if argv[1] not in COMMANDS:
            raise UserError(f"unknown command {argv[1]!r}; commands: {', '.join(COMMANDS)}")
        module.run(*argv[2:])
    except UserError as err:
        if FLAGS.verbose_errors:
            raise
        print(f"fmkeras: error: {err}", file=sys.stderr)
        return 2
    return 0


def underscore_flag_names(argv: list) -> list:
    """`--labels-per-class=5` -> `--labels_per_class=5`: absl only knows underscores; values stay as given."""
    fixed = []
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            name, sep, value = arg[2:].partition("=")
            arg = "--" + name.replace("-", "_") + sep + value
        fixed.append(arg)
    return fixed


def run():
    """Console-script entry point."""
    sys.argv = underscore_flag_names(sys.argv)
    sys.modules["__main__"].__doc__ = usage()  # absl prints the main module's doc for --help
    app.run(main)


if __name__ == "__main__":
    run()
