"""`fmkeras predict`: top-k labels for image files and folders, one CSV row or JSON object per file."""
from __future__ import annotations

import os
import sys

from absl import flags

from fmkeras.atomic_files import write_with

from fmkeras.cli.flags import FLAGS
from fmkeras.errors import UserError

HELP = ("classify image files/folders: fmkeras predict --model=RUN_DIR|SAVED_MODEL|FILE.keras|"
        "preset:efficientnet_lite0 [--top_k=5] [--format=csv|json] [--out=FILE] PATH...")
TAKES_PATHS = True  # positional arguments after the command are image files or folders

flags.DEFINE_integer("top_k", 5, "predict: labels (with scores) reported per image.")
flags.DEFINE_string("out", None, "predict: file to write (atomically: temp file + rename); default stdout.")
flags.DEFINE_string("explain", None, "predict: folder for Grad-CAM overlays of each image's top-1 class "
                    "(run directories and .keras classifiers with a conv backbone).")

FORMATS = ("csv", "json")


def _write_atomically(path: str, write):
    def write_file(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            write(fh)
    write_with(write_file, path)


def run(*paths) -> list:
    from fmkeras.data.image_folder import IMAGE_EXTENSIONS
    from fmkeras.predict.predictors import explain_files, find_images, load_predictor, predict_files, write_predictions
    fmt = FLAGS.format or "csv"
    if fmt not in FORMATS:
        raise UserError(f"predict --format must be one of {', '.join(FORMATS)}. Received: --format={fmt}")
    if not FLAGS.model:
        raise UserError("predict needs --model=RUN_DIR|SAVED_MODEL|FILE.keras|preset:NAME")
    if not paths:
        raise UserError("predict needs image files or folders after the flags: fmkeras predict --model=... PATH...")
    if FLAGS.top_k < 1:
        raise UserError(f"--top_k must be >= 1. Received: --top_k={FLAGS.top_k}")
    if FLAGS.batch_size is not None and FLAGS.batch_size < 1:
        raise UserError(f"--batch_size must be >= 1. Received: --batch_size={FLAGS.batch_size}")
    if FLAGS.out and not os.path.isdir(os.path.dirname(os.path.abspath(FLAGS.out))):
        raise UserError(f"--out={FLAGS.out}: directory {os.path.dirname(os.path.abspath(FLAGS.out))} not found")
    files = find_images(paths)
    if not files:
        raise UserError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {', '.join(paths)}")
    predictor = load_predictor(FLAGS.model, FLAGS.trust_model)
    rows = predict_files(predictor, files, FLAGS.top_k, FLAGS.batch_size or 32)
    if FLAGS.explain:
        explain_files(predictor, rows, FLAGS.explain)
    k = min(FLAGS.top_k, len(predictor.class_names))
    if FLAGS.out:
        _write_atomically(FLAGS.out, lambda fh: write_predictions(rows, fh, fmt, k))
    else:
        try:
            write_predictions(rows, sys.stdout, fmt, k)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. `| head`: the reader stopped early; no traceback for that
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    failed = sum(row["error"] is not None for row in rows)
    print(f"predicted {len(rows) - failed} images, {failed} with errors" + (f"; wrote {FLAGS.out}" if FLAGS.out
          else ""), file=sys.stderr)
    return rows
