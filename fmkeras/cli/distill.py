"""`fmkeras distill`: train a student on a teacher's soft targets; compare with the student from scratch."""
from __future__ import annotations

import dataclasses
import os

from absl import flags

from fmkeras.cli.flags import FLAGS, config_from_flags
from fmkeras.errors import UserError

flags.DEFINE_string("teacher", None, "distill: the teacher, a run directory or a .keras classifier.")
flags.DEFINE_string("student", None, "distill: the student, a backbone name (with model.* from the config) or a "
                    "recipe name (its model section).")

HELP = ("distill a teacher into a student: fmkeras distill --teacher=runs/cnn_fashion-... --student=cnn "
        "--set='model.backbone_options={filters: [8, 16]}'")


def student_model(name: str, cfg):
    """The student's ModelConfig: a recipe's model section, or cfg.model with backbone `name`."""
    from fmkeras.backbones import list_backbones
    from fmkeras.recipes import list_recipes, load_recipe
    if name in list_recipes():
        return load_recipe(name).model
    if name in list_backbones():
        return dataclasses.replace(cfg.model, backbone=name, weights=None)
    raise UserError(f"--student={name!r} is neither a backbone ({', '.join(list_backbones())}) nor a recipe "
                    f"({', '.join(list_recipes())})")


def run() -> dict:
    import json

    from fmkeras.config import DistillRunConfig
    from fmkeras.experiment.distillation import compare_distillation
    from fmkeras.experiment import MODEL_FILE, make_run_dir, run_config
    from fmkeras.model_files.keras_file import load_keras_model
    if not FLAGS.teacher or not FLAGS.student:
        raise UserError("distill needs --teacher=RUN_DIR|FILE.keras and --student=BACKBONE|RECIPE")
    cfg = config_from_flags(DistillRunConfig)
    path = FLAGS.teacher
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, MODEL_FILE)):
        if not (FLAGS.data or FLAGS.config or FLAGS.set):
            cfg = dataclasses.replace(cfg, data=run_config(path).data)  # the teacher's data
        path = os.path.join(path, MODEL_FILE)
    elif not (path.endswith(".keras") and os.path.isfile(path)):
        raise UserError(f"--teacher={FLAGS.teacher} is not a run directory or a .keras file")
    # Inspected, checked against its .sha256 sidecar, then safe mode: the same gate as every other loader.
    teacher = load_keras_model(path, trust=getattr(FLAGS, "trust_model", False))
    run_dir = make_run_dir(dataclasses.replace(cfg, name=f"{cfg.name}-distill"))
    report = compare_distillation(cfg, teacher, student_model(FLAGS.student, cfg), run_dir)
    print(json.dumps({k: report[k] for k in ("teacher", "student_scratch", "student_distilled",
                                             "distilled_minus_scratch")}, indent=2))
    print(f"report: {os.path.join(run_dir, 'distill.json')}")
    return report
