"""`fmkeras export`: export a finished run as the next SavedModel version."""
from __future__ import annotations

from absl import flags

from fmkeras.cli.flags import FLAGS
from fmkeras.errors import UserError

HELP = ("export a finished run as the next SavedModel version: fmkeras export --run_dir=runs/... "
        "[--format=tflite --quantize=int8]")

flags.DEFINE_enum("format", None, ["saved_model", "tflite", "csv", "json"],
                  "export: saved_model (default) | tflite; predict: csv (default) | json.")
flags.DEFINE_enum("quantize", "none", ["none", "dynamic", "int8", "float16"],
                  "export --format=tflite: quantization (int8 is calibrated on the run's training images).")
flags.DEFINE_boolean("trust_model", False, "Let Keras run Python code stored in the .keras file (Lambda layers). "
                     "Only for files you trust; safe mode is on otherwise.")


def run() -> dict:
    from fmkeras.experiment.finished_runs import export, export_tflite
    from fmkeras.config import RunConfig, apply_overrides
    if not (FLAGS.run_dir or FLAGS.model):
        raise UserError("export needs --run_dir=RUN_DIR")
    if FLAGS.format not in (None, "saved_model", "tflite"):
        raise UserError(f"export --format must be saved_model or tflite. Received: --format={FLAGS.format}")
    if FLAGS.format == "tflite":
        return export_tflite(FLAGS.run_dir or FLAGS.model, FLAGS.quantize, FLAGS.trust_model)
    if FLAGS.quantize != "none":
        raise UserError("--quantize applies to --format=tflite only")
    overrides = {"export.base_dir": FLAGS.export_dir, "export.model_name": FLAGS.model_name}
    cfg = apply_overrides(RunConfig(), {k: v for k, v in overrides.items() if v})
    return export(FLAGS.run_dir or FLAGS.model, cfg, FLAGS.trust_model)
