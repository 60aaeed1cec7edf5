"""Distillation report: teacher vs the same student trained from scratch vs the distilled student.

Both students share the model config, data, labels, epochs, optimizer and seed; only the loss
differs (hard labels vs `distill.alpha` hard + (1 - alpha) teacher soft targets at `distill.temperature`).

Example:
    report = compare_distillation(cfg, teacher=load_keras_model("runs/big/model.keras"),
                                  student_model=ModelConfig(backbone="cnn", backbone_options={"filters": (8, 16)}))
"""
from __future__ import annotations

import dataclasses
import os

import keras

from fmkeras.config import ModelConfig, RunConfig
from fmkeras.data import build_datasets
from fmkeras.errors import ConfigError
from fmkeras.experiment.low_label import set_batchnorm_momentum
from fmkeras.atomic_files import write_with
from fmkeras.evaluate.report import write_json
from fmkeras.train import fit, restores_dtype_policy, seed_everything
from fmkeras.train.optimizers import build_optimizer
from fmkeras.train.schedules import build_schedule
from fmkeras.train.trainer import steps_per_epoch
from fmkeras.transfer import build_classifier
from fmkeras.train.distill import Distiller
from fmkeras.tasks import load_image_source

STUDENT_FILE = "student.keras"


def _accuracy(model, dataset) -> float:
    correct = total = 0
    for x, y in dataset:
        predictions = keras.ops.convert_to_numpy(model(x, training=False)).argmax(axis=1)
        correct += int((predictions == keras.ops.convert_to_numpy(y)).sum())
        total += len(predictions)
    return round(correct / max(total, 1), 4)


@restores_dtype_policy
def compare_distillation(cfg: RunConfig, teacher: keras.Model, student_model: ModelConfig, run_dir: str,
                         batchnorm_momentum: float = None) -> dict:
    """Trains the student from scratch and by distillation; returns accuracies and parameter counts.

    batchnorm_momentum: float. Sets both students' BatchNorm moving-average momentum (short runs need
        < 0.99, see fmkeras.experiment.low_label). Defaults to None (Keras' 0.99).
    """
    source = load_image_source(cfg, "distill")
    data = build_datasets(source, cfg.data, cfg.train.batch_size)
    if tuple(teacher.input_shape[1:]) != tuple(data.image_shape):
        raise ConfigError(f"teacher expects images of shape {tuple(teacher.input_shape[1:])} but data "
                          f"{source.name} gives {tuple(data.image_shape)}; set data.image_size/data.channels")
    if teacher.output_shape[-1] != len(data.class_names):
        raise ConfigError(f"teacher predicts {teacher.output_shape[-1]} classes but data {source.name} has "
                          f"{len(data.class_names)}")
    train_cfg = dataclasses.replace(cfg.train, label_smoothing=0.0, adversarial="none", loss="crossentropy")
    test = data.test if data.test is not None else data.val

    seed_everything(train_cfg)
    scratch = build_classifier(student_model, data.image_shape, len(data.class_names))
    if batchnorm_momentum is not None:
        set_batchnorm_momentum(scratch, batchnorm_momentum)
    scratch_fit = fit(scratch, data, train_cfg, os.path.join(run_dir, "student_scratch"))

    seed_everything(train_cfg)  # same initial weights and data order as the scratch student
    student = build_classifier(student_model, data.image_shape, len(data.class_names))
    if batchnorm_momentum is not None:
        set_batchnorm_momentum(student, batchnorm_momentum)
    distiller = Distiller(student, teacher)
    total = steps_per_epoch(train_cfg, data.num_train) * train_cfg.epochs
    distiller.compile(optimizer=build_optimizer(train_cfg, build_schedule(train_cfg, total)),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                      alpha=cfg.distill.alpha, temperature=cfg.distill.temperature)
    distilled_fit = fit(distiller, data, train_cfg, os.path.join(run_dir, "student_distilled"), compile=False)
    write_with(student.save, os.path.join(run_dir, STUDENT_FILE))

    report = {
        "data": source.name, "num_train": data.num_train, "evaluated_on": "test" if data.test is not None else "val",
        "distill": dataclasses.asdict(cfg.distill), "epochs": train_cfg.epochs,
        "teacher": {"accuracy": _accuracy(teacher, test), "params": teacher.count_params()},
        "student_scratch": {"accuracy": _accuracy(scratch, test), "params": scratch.count_params(),
                            "train_seconds": round(scratch_fit.seconds, 2)},
        "student_distilled": {"accuracy": _accuracy(student, test), "params": student.count_params(),
                              "train_seconds": round(distilled_fit.seconds, 2),
                              "model": os.path.join(run_dir, STUDENT_FILE)},
    }
    report["distilled_minus_scratch"] = round(report["student_distilled"]["accuracy"]
                                              - report["student_scratch"]["accuracy"], 4)
    write_json(os.path.join(run_dir, "distill.json"), report)
    return report
