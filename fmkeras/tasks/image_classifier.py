"""The Python API for notebooks: an image classifier from a backbone or preset, fitted in stages, evaluated and
exported in a handful of lines, no config objects needed.

It is the same machinery `fmkeras train` runs (fmkeras.transfer.build_classifier, fit_stages, the image task's
evaluation and SavedModel export); keyword arguments take the place of the recipe fields of the same names.

Example:
    data = image_data("folder:../shared/data/hymenoptera", image_size=(224, 224), batch_size=16)
    classifier = ImageClassifier.from_preset("efficientnet_lite0", data.class_names, dropout=0.2)
    classifier.fit(data, epochs=3, learning_rate=1e-3, freeze_backbone=True,
                   finetune_epochs=2, finetune_learning_rate=1e-4, unfreeze_blocks=2)
    classifier.evaluate(data.test or data.val)["accuracy"]
    classifier.export("saved_models/ants_bees")

Multi-label (several classes per image, `multilabel:FILE.csv` sources): `ImageClassifier(..., multi_label=True)`
puts one sigmoid per class and trains with binary cross-entropy; `evaluate(data.test, validation=data.val)`
picks per-class thresholds on the validation split, and `predict_labels` and `export` apply them.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile

import keras

from fmkeras.config import DataConfig, FinetuneConfig, HeadConfig, ModelConfig, RunConfig, TrainConfig
from fmkeras.data import build_datasets, load_source
from fmkeras.errors import ConfigError
from fmkeras.tasks import task_for_source
from fmkeras.tasks.image import MULTI_LABEL_LOSS, ImageClassification
from fmkeras.tasks.multilabel import MultiLabelClassification
from fmkeras.transfer import build_classifier, fit_stages


def image_data(source: str, batch_size: int = 64, **data_options):
    """Batched train / val / test datasets of an image source (`fashion_mnist`, `folder:DIR`, `idx:DIR`,
    `tfds:NAME`, `npz:FILE`, `multilabel:FILE.csv`). `data_options` are DataConfig fields (image_size,
    validation_split, classes, limit_train, augment={...}, center_crop, ...). Returns fmkeras.data.Datasets (train, val, test, image_shape,
    class_names, num_train, ...)."""
    augment = data_options.pop("augment", None)
    cfg = DataConfig(source=source, **data_options)
    if augment is not None:
        cfg = dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, **augment))
    task = task_for_source(source)
    if task.modality != "image":
        raise ConfigError(f"image_data takes image sources; {source!r} is a {task.description} source (train it "
                          f"with `fmkeras train --set data.source={source}`)")
    source_obj = load_source(cfg)
    cfg = task.prepare(RunConfig(data=cfg), source_obj).data
    return build_datasets(source_obj, cfg, batch_size)


class ImageClassifier:
    """A backbone with a new head for `class_names`; `model` is the keras.Model once built.

    backbone: str. A registered backbone (`fmkeras list backbones`). weights: None (random), a preset name
    ("imagenet") or a .keras/.weights.h5 file. head_units, dropout, pooling: the new head. lora_rank: > 0
    trains LoRA adapters instead of the backbone. input_shape: (H, W, C); None takes the data's at `fit`.
    multi_label: one sigmoid per class and binary cross-entropy, for data with several classes per image;
    `thresholds` (per class, 0.5 until `evaluate` picks them on a validation split) turn scores into labels.
    seed: seeds Python, NumPy and Keras before the model is built, so a fit is reproducible.
    """

    def __init__(self, backbone: str, class_names, weights: str = None, input_shape: tuple = None,
                 backbone_options: dict = None, head_units: tuple = (), dropout: float = 0.0,
                 pooling: str = "avg", lora_rank: int = 0, multi_label: bool = False, seed: int = 1337):
        self.seed = seed
        self.class_names = tuple(class_names)
        self.multi_label = bool(multi_label)
        self.task = MultiLabelClassification() if self.multi_label else ImageClassification()
        self.thresholds = (0.5,) * len(self.class_names) if self.multi_label else None
        self.threshold_source = "default_0.5" if self.multi_label else None
        self.model_cfg = ModelConfig(backbone=backbone, weights=weights, backbone_options=dict(backbone_options or {}),
                                     head=HeadConfig(pooling=pooling, dense_units=tuple(head_units), dropout=dropout,
                                                     multi_label=self.multi_label),
                                     lora_rank=lora_rank)
        self.model = None
        self.data_cfg = DataConfig()
        if input_shape is not None:
            self.build(input_shape)

    @classmethod
    def from_preset(cls, backbone: str, class_names, preset: str = "imagenet", **options) -> "ImageClassifier":
        """The backbone with its pretrained `preset` weights and a new head (see `fmkeras list backbones`)."""
        return cls(backbone, class_names, weights=preset, **options)

    def build(self, input_shape: tuple):
        """Builds `model` for images of `input_shape`; returns it."""
        keras.utils.set_random_seed(self.seed)
        self.model = build_classifier(self.model_cfg, tuple(input_shape), len(self.class_names))
        return self.model

    def fit(self, data, epochs: int = 5, learning_rate: float = 1e-3, freeze_backbone: bool = False,
            finetune_epochs: int = 0, finetune_learning_rate: float = 1e-5, unfreeze_blocks: int = 0,
            unfreeze_layers: int = 0, run_dir: str = None, **train_options):
        """Stage 1: `epochs` at `learning_rate` (backbone frozen if `freeze_backbone`); stage 2 (if
        `finetune_epochs`): the top `unfreeze_blocks`/`unfreeze_layers` (0: all) unfrozen at
        `finetune_learning_rate`, BatchNorm kept frozen. `train_options` are TrainConfig fields (optimizer,
        schedule, weight_decay, label_smoothing, batch_size, ...). Checkpoints and logs go to `run_dir` (a
        temporary directory if None). Returns the result: history, stages, seconds."""
        if tuple(data.class_names) != self.class_names:
            raise ConfigError(f"the data's classes {list(data.class_names)} are not the classifier's "
                              f"{list(self.class_names)}")
        multi_hot = len(data.train.element_spec[1].shape) == 2
        if multi_hot != self.multi_label:
            raise ConfigError("the data has several labels per image (multi-hot); build the classifier with "
                              "multi_label=True" if multi_hot else "the data has one label per image; "
                              "multi_label=True is for multi-hot data (multilabel:FILE.csv sources)")
        if self.multi_label:
            train_options = {**train_options, "loss": MULTI_LABEL_LOSS}
        if self.model is None:
            self.build(data.image_shape)
        self.data_cfg = dataclasses.replace(self.data_cfg, image_size=tuple(data.image_shape[:2]))
        cfg = RunConfig(model=self.model_cfg, data=self.data_cfg,
                        train=TrainConfig(epochs=epochs, learning_rate=learning_rate,
                                          **{"verbose": 0, **train_options}),
                        finetune=FinetuneConfig(freeze_backbone=freeze_backbone, epochs=finetune_epochs,
                                                learning_rate=finetune_learning_rate,
                                                unfreeze_blocks=unfreeze_blocks, unfreeze_layers=unfreeze_layers))
        run_dir = run_dir or tempfile.mkdtemp(prefix="fmkeras-fit-")
        return fit_stages(self.model, data, cfg, run_dir)

    def predict(self, images):
        """Class probabilities (N, K) of a batch of images in [0, 255] (multi-label: one sigmoid per class)."""
        return self._built().predict_on_batch(images)

    def predict_labels(self, images) -> list:
        """Multi-label: per image, the class names whose score reaches their threshold (`thresholds`)."""
        if not self.multi_label:
            raise ConfigError("predict_labels is for multi_label=True classifiers; use predict(images).argmax(-1)")
        scores = self.predict(images)
        return [[name for name, score, cut in zip(self.class_names, row, self.thresholds) if score >= cut]
                for row in scores]

    def evaluate(self, dataset, out_dir: str = None, validation=None) -> dict:
        """Accuracy, macro F1, per-class report and confusion matrix on a batched (images, labels) dataset;
        the plots and JSON go to `out_dir` (a temporary directory if None). Multi-label: mAP, micro/macro F1
        at per-class thresholds picked on the `validation` dataset (0.5 without one), kept in `thresholds`."""
        model = self._built()
        report = self.task.evaluate(lambda x: model(x, training=False), dataset, self.class_names,
                                    out_dir or tempfile.mkdtemp(prefix="fmkeras-eval-"), model=model,
                                    validation=validation)
        if self.multi_label:
            self.thresholds, self.threshold_source = tuple(report["thresholds"]), report["threshold_source"]
        return report

    def export(self, base_path: str) -> str:
        """Writes the next SavedModel version under `base_path` (JPEG/PNG bytes or pixels in, probabilities
        and class names out, as `fmkeras serve` serves it; multi-label: `labels` at `thresholds` too); returns
        its path."""
        model = self._built()
        cfg = RunConfig(model=self.model_cfg, data=self.data_cfg)
        options = {"evaluation": {"thresholds": list(self.thresholds), "threshold_source": self.threshold_source}} \
            if self.multi_label else {}
        _, path = self.task.export(model, os.fspath(base_path), self.class_names, cfg, tuple(model.input_shape[1:]),
                                   {"backbone": self.model_cfg.backbone}, **options)
        return path

    def _built(self):
        if self.model is None:
            raise ConfigError("the classifier is not built yet: call fit(data) or build(input_shape) first")
        return self.model
