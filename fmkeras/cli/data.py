"""`fmkeras data preview`: write a PNG grid of augmented training samples of a recipe/config."""
from __future__ import annotations

from absl import flags

from fmkeras.cli.flags import FLAGS, config_from_flags
from fmkeras.errors import UserError

HELP = "data tools: fmkeras data preview --recipe=cnn_fashion [--preview_out=preview.png] [--set=data.augment...]"
SUBCOMMANDS = ("preview",)

flags.DEFINE_string("preview_out", "augment_preview.png", "data preview: PNG file to write.")
flags.DEFINE_integer("preview_images", 8, "data preview: training images (rows).")
flags.DEFINE_integer("preview_variants", 6, "data preview: augmented draws per image (columns after the original).")


def run(subcommand: str = None) -> str:
    if subcommand not in SUBCOMMANDS:
        raise UserError(f"`fmkeras data` needs a subcommand: {', '.join(SUBCOMMANDS)}. Received: {subcommand!r}")
    if FLAGS.preview_images < 1 or FLAGS.preview_variants < 1:
        raise UserError("--preview_images and --preview_variants must be >= 1")
    from fmkeras.data.preview import write_augmentation_preview
    cfg = config_from_flags()
    path = write_augmentation_preview(cfg.data, FLAGS.preview_out, FLAGS.preview_images, FLAGS.preview_variants,
                                      seed=cfg.data.seed)
    print(f"augmentation preview: {path}")
    return path
