"""`fmkeras lowlabel`: k labels per class from scratch vs linear probe vs fine-tune of a pretrained backbone."""
from __future__ import annotations

from absl import flags

from fmkeras.cli.flags import FLAGS, config_from_flags
from fmkeras.errors import UserError

flags.DEFINE_list("low_label_modes", ["scratch", "probe", "finetune"],
                  "lowlabel: which of scratch, probe (frozen backbone + linear head), finetune to run.")

HELP = ("low-label evaluation of a pretrained backbone: fmkeras lowlabel --weights=backbone.keras "
        "--labels_per_class=60")


def run() -> dict:
    import json
    import os

    from fmkeras.experiment.low_label import compare_low_label
    cfg = config_from_flags()
    if not cfg.data.labels_per_class:
        raise UserError("lowlabel needs --labels_per_class=K (or --set=data.labels_per_class=K)")
    weights = cfg.model.weights
    run_dir = cfg.run_dir or os.path.join(cfg.run_root, f"{cfg.name}-low_label")
    report = compare_low_label(cfg, weights, modes=tuple(FLAGS.low_label_modes), run_dir=run_dir)
    print(json.dumps({m: r["test_accuracy"] for m, r in report["results"].items()}))
    print(f"report: {os.path.join(run_dir, 'low_label.json')}")
    return report
