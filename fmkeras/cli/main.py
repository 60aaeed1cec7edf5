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
    # Commands with SUBCOMMANDS (e.g. `data preview`) take one more word; the others none.
    if len(argv) > 2 + bool(getattr(module, "SUBCOMMANDS", None)):
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


def run():
    """Console-script entry point."""
    sys.modules["__main__"].__doc__ = usage()  # absl prints the main module's doc for --help
    app.run(main)


if __name__ == "__main__":
    run()
