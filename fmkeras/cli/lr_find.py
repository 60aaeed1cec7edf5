"""`fmkeras lr_find`: LR range test of a recipe/config; writes lr_find.json + lr_find.png, prints the suggestion."""
from __future__ import annotations

import os

from absl import flags

from fmkeras.cli.flags import FLAGS, config_from_flags
from fmkeras.errors import UserError

HELP = ("LR range test: fmkeras lr_find --recipe=cnn_fashion [--lr_find_steps=200] [--lr_find_out=DIR]; "
        "prints the suggested train.learning_rate")

flags.DEFINE_integer("lr_find_steps", 200, "lr_find: training steps of the exponential sweep (>= 10).")
flags.DEFINE_float("lr_find_min", 1e-7, "lr_find: first learning rate of the sweep.")
flags.DEFINE_float("lr_find_max", 1.0, "lr_find: last learning rate of the sweep.")
flags.DEFINE_string("lr_find_out", None, "lr_find: output directory (default <run_root>/<name>-lr_find).")


def run() -> dict:
    from fmkeras.experiment.lr_find import find_learning_rate
    cfg = config_from_flags()
    if FLAGS.lr_find_steps < 10 or not 0 < FLAGS.lr_find_min < FLAGS.lr_find_max:
        raise UserError(f"lr_find needs --lr_find_steps >= 10 and 0 < --lr_find_min < --lr_find_max. Received: "
                        f"steps={FLAGS.lr_find_steps}, min={FLAGS.lr_find_min}, max={FLAGS.lr_find_max}")
    out = FLAGS.lr_find_out or os.path.join(cfg.run_root, f"{cfg.name}-lr_find")
    report = find_learning_rate(cfg, out, steps=FLAGS.lr_find_steps, min_lr=FLAGS.lr_find_min,
                                max_lr=FLAGS.lr_find_max)
    print(f"suggested learning rate: {report['suggested_learning_rate']:.3g}  (steepest fall of the smoothed loss; "
          f"min-loss LR / 10: {report['min_loss_lr_div_10']:.3g})")
    print(f"use it: fmkeras train --recipe=... --set=train.learning_rate={report['suggested_learning_rate']:.3g}")
    print(f"curve: {report['plot']}  data: {report['json']}")
    return report
