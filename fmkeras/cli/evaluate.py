"""`fmkeras evaluate`: test a run directory, .keras file or SavedModel on a data source."""
from __future__ import annotations

from absl import flags

from fmkeras.cli.flags import FLAGS, config_from_flags
from fmkeras.errors import UserError

flags.DEFINE_list("fgsm_epsilon", [], "evaluate: also report FGSM-robust accuracy at these epsilons (fractions of "
                  "the 0-255 pixel range, e.g. 0.05,0.1); needs a run directory or .keras model.")

flags.DEFINE_string("tta", None, "evaluate: test-time augmentation, `flip` or a number of views 2..10 (mirror, then "
                    "1-pixel shifts); reports accuracy with and without it.")

HELP = ("test a run dir / .keras / SavedModel: fmkeras evaluate --model=runs/cnn_fashion-... [--data=...]; "
        "average several: --ensemble=RUN_A,SAVED_MODEL_B")


def run() -> dict:
    from fmkeras.experiment.finished_runs import evaluate, evaluate_ensemble
    if FLAGS.ensemble:
        data_cfg = config_from_flags().data if (FLAGS.data or FLAGS.config or FLAGS.set) else None
        return evaluate_ensemble([p.strip() for p in FLAGS.ensemble.split(",") if p.strip()], data_cfg,
                                 FLAGS.run_dir)
    if not FLAGS.model:
        raise UserError("evaluate needs --model=RUN_DIR|FILE.keras|SAVED_MODEL_DIR")
    data_cfg = config_from_flags().data if (FLAGS.data or FLAGS.config or FLAGS.set) else None
    if FLAGS.fgsm_epsilon:
        from fmkeras.experiment.finished_runs import keras_model_file
        keras_model_file(FLAGS.model)  # fail before the clean evaluation, not after it
    report = evaluate(FLAGS.model, data_cfg, tta=FLAGS.tta)
    if FLAGS.fgsm_epsilon:
        from fmkeras.experiment.finished_runs import robust_evaluate
        report["robust"] = robust_evaluate(FLAGS.model, data_cfg, [float(e) for e in FLAGS.fgsm_epsilon])
    return report
