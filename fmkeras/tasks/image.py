"""Image classification: pixels in, one class out.

The task owns what is particular to images: loading an image source (`fashion_mnist`, `idx:`, `tfds:`,
`folder:`, `npz:`), the tf.data pipeline with its fused augmentation, the classifier (backbone + head),
the evaluation (confusion matrix, misclassified images, Grad-CAM) and the SavedModel signatures
(`serving_default` takes encoded image bytes, `serve_pixels` uint8 arrays).

Example:
    task = ImageClassification()
    source = task.load_source(cfg)
    data = task.build_datasets(source, cfg)
    model = task.build_model(cfg, data)
"""
from __future__ import annotations

import dataclasses
import logging

from fmkeras.backbones import get_backbone
from fmkeras.config import RunConfig
from fmkeras.data import build_datasets, load_source
from fmkeras.errors import ConfigError
from fmkeras.evaluate import evaluate_predictions
from fmkeras.evaluate.metrics import classification_report, predict_dataset
from fmkeras.evaluate.tta import tta_predict, tta_views
from fmkeras.export import export_saved_model
from fmkeras.train.trainer import resolve_precision
from fmkeras.transfer import build_classifier

log = logging.getLogger("fmkeras")
MULTI_LABEL_LOSS = "binary_crossentropy"


def refuse_multi_label_settings(cfg: RunConfig, modality: str):
    """ConfigError when a single-label run asks for the multi-label loss or head."""
    given = {"train.loss": cfg.train.loss == MULTI_LABEL_LOSS, "model.head.multi_label": cfg.model.head.multi_label}
    for name, asked in given.items():
        if asked:
            value = MULTI_LABEL_LOSS if name == "train.loss" else True
            raise ConfigError(f"`{name}={value}` is for multi-label sources (data.source=multilabel:FILE.csv); "
                              f"{modality} sources have one class per example. Received: data.source="
                              f"{cfg.data.source!r}")


class ImageClassification:
    """The image-classification task (see the module docstring)."""
    modality = "image"
    name = "image_classification"
    description = "image"
    # `fmkeras` commands that only exist for images; the text task refuses them by name.
    commands = ("train", "tune", "evaluate", "export", "pretrain", "lowlabel", "distill", "lr_find",
                "evaluate --fgsm_epsilon", "evaluate --tta", "evaluate --ensemble", "export --format=tflite")
    instead = {}

    def check_config(self, cfg: RunConfig):
        """Refuses, by name, the settings image runs do not have (among them the multi-label loss and head)."""
        refuse_multi_label_settings(cfg, "image")
        self.refuse_ensemble(cfg)

    def precision(self, cfg: RunConfig) -> str:
        """The Keras policy the run trains in: `train.precision`, with `auto` resolved for this machine."""
        return resolve_precision(cfg.train.precision)

    def refuse_ensemble(self, cfg: RunConfig):
        if cfg.model.ensemble > 1:
            raise ConfigError("`model.ensemble` > 1 trains text classifiers (data.source=text:...); for image models, "
                              "train runs with different train.seed values and average them with "
                              f"`fmkeras evaluate --ensemble=RUN_A,RUN_B`. Received: model.ensemble={cfg.model.ensemble}, "
                              f"data.source={cfg.data.source!r}")

    def load_source(self, cfg: RunConfig):
        return load_source(cfg.data)

    def prepare(self, cfg: RunConfig, source) -> RunConfig:
        """`cfg` with `data.image_size` set when the images differ in size (before config.json is written,
        so exports and evaluations rebuild the same data)."""
        if cfg.data.image_size or source.image_shape is not None:
            return cfg
        size = tuple(cfg.model.input_size or get_backbone(cfg.model.backbone).default_input_size)
        log.info("%s: images differ in size; resizing them to %s (model.input_size or the backbone's default; "
                 "set data.image_size to change it)", source.name, size)
        return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image_size=size))

    def build_datasets(self, source, cfg: RunConfig, batch_size: int = None, deterministic: bool = None):
        deterministic = cfg.train.deterministic if deterministic is None else deterministic
        return build_datasets(source, cfg.data, batch_size or cfg.train.batch_size, deterministic=deterministic)

    def build_model(self, cfg: RunConfig, data):
        return build_classifier(cfg.model, data.image_shape, len(data.class_names))

    def check_strategy(self, cfg: RunConfig, strategy_name: str):
        """Images train under every strategy (each loop refuses the settings it cannot honour)."""

    def fit(self, model, data, cfg: RunConfig, run_dir: str, loop, total_epochs: int = None):
        """Trains `model` with `loop` (fmkeras.experiment.loops). Returns (model, TrainResult, None)."""
        return model, loop(model, data, cfg, run_dir, total_epochs=total_epochs), None

    def evaluate(self, predict, dataset, class_names, out_dir: str, prefix: str = "test", model=None,
                 validation=None, tta=None) -> dict:
        """Accuracy, per-class report and plots of `predict` on `dataset` (Grad-CAM when `model` is given).
        `validation` is not used (single-label predictions need no thresholds). `tta` ("flip" or a number of
        views, fmkeras.evaluate.tta): the test-time-augmented accuracy too, under "tta" beside the plain one."""
        report = evaluate_predictions(predict, dataset, class_names, out_dir, prefix=prefix, gradcam_model=model)
        if tta is not None:
            probabilities, labels, _ = predict_dataset(tta_predict(predict, tta), dataset)
            augmented = classification_report(probabilities, labels, class_names)
            report["tta"] = {"mode": str(tta), "views": tta_views(tta), "accuracy": augmented["accuracy"],
                             "macro_f1": augmented["macro_f1"], "accuracy_without_tta": report["accuracy"]}
        return report

    def summary(self, report: dict) -> str:
        """One line of `evaluate`'s report for the console."""
        line = f"accuracy: {report['accuracy']}  macro F1: {report['macro_f1']}  ({report['num_examples']} images)"
        if report.get("tta"):
            line += f"; with TTA ({report['tta']['mode']}, {report['tta']['views']} views): {report['tta']['accuracy']}"
        return line

    def export(self, model, base_path: str, class_names, cfg: RunConfig, data_shape, metadata: dict,
               evaluation: dict = None) -> tuple:
        """Next SavedModel version under `base_path`: (version, path). `evaluation` is not used."""
        return export_saved_model(model, base_path, class_names, data_shape, extra_metadata=metadata,
                                  crop=cfg.data.center_crop, tta=cfg.export.tta)

    def report_fields(self, data, model, extra) -> dict:
        """What metrics.json says that only this task knows."""
        return {"image_shape": list(data.image_shape), "vocabulary_size": None, "ensemble": None}

    def input_shape(self, data):
        return data.image_shape

    def prepare_retrain(self, cfg: RunConfig, source) -> RunConfig:
        return cfg

