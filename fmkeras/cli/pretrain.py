"""`fmkeras pretrain`: make a backbone (.keras + .json) from a source dataset for `fmkeras train --weights`."""
from __future__ import annotations

from absl import flags

from fmkeras.cli.flags import FLAGS, config_from_flags

flags.DEFINE_enum("pretrain_method", None, ["simclr", "supervised"],
                  "pretrain.method: simclr (contrastive, labels ignored) or supervised (source labels).")
flags.DEFINE_integer("pretrain_epochs", None, "pretrain.epochs.")
flags.DEFINE_string("pretrain_output", None, "pretrain.output: the backbone .keras file to write "
                    "(default <run_dir>/backbone.keras).")

HELP = ("pretrain a backbone on a source (SimCLR, labels ignored; or supervised): "
        "fmkeras pretrain --data=folder:DIR --pretrain_epochs=5  -> then fmkeras train --weights=backbone.keras")


def run() -> dict:
    from fmkeras.config import PretrainRunConfig, apply_overrides
    from fmkeras.pretrain import run_pretraining
    overrides = {"pretrain.method": FLAGS.pretrain_method, "pretrain.epochs": FLAGS.pretrain_epochs,
                 "pretrain.output": FLAGS.pretrain_output}
    cfg = apply_overrides(config_from_flags(PretrainRunConfig), {k: v for k, v in overrides.items() if v is not None})
    report = run_pretraining(cfg)
    history = report["history"]
    print(f"run directory: {report['run_dir']}")
    print(f"{report['method']} pretraining on {report['images']} images of {report['data']}: "
          f"final loss {history['loss'][-1]:.4f} ({report['seconds']} s)")
    print(f"backbone: {report['backbone_path']}")
    print(f"use it:   {report['backbone']['use_with']}")
    return report
