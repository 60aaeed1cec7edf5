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
"""
from __future__ import annotations

import dataclasses
import os
import tempfile

import keras

from fmkeras.config import DataConfig, FinetuneConfig, HeadConfig, ModelConfig, RunConfig, TrainConfig
from fmkeras.data import build_datasets, load_source
from fmkeras.errors import ConfigError
from fmkeras.tasks.image import ImageClassification
from fmkeras.transfer import build_classifier, fit_stages


def image_data(source: str, batch_size: int = 64, **data_options):
    """Batched train / val / test datasets of an image source (`fashion_mnist`, `folder:DIR`, `idx:DIR`,
    `tfds:NAME`, `npz:FILE`). `data_options` are DataConfig fields (image_size, validation_split, classes,
    limit_train, augment={...}, center_crop, ...). Returns fmkeras.data.Datasets (train, val, test, image_shape,
    class_names, num_train, ...)."""
    augment = data_options.pop("augment", None)
    cfg = DataConfig(source=source, **data_options)
    if augment is not None:
        cfg = dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, **augment))
    source_obj = load_source(cfg)
    cfg = ImageClassification().prepare(RunConfig(data=cfg), source_obj).data
    return build_datasets(source_obj, cfg, batch_size)


class ImageClassifier:
    """A backbone with a new head for `class_names`; `model` is the keras.Model once built.

    backbone: str. A registered backbone (`fmkeras list backbones`). weights: None (random), a preset name
    ("imagenet") or a .keras/.weights.h5 file. head_units, dropout, pooling: the new head. lora_rank: > 0
    trains LoRA adapters instead of the backbone. input_shape: (H, W, C); None takes the data's at `fit`.
    seed: seeds Python, NumPy and Keras before the model is built, so a fit is reproducible.
    """

    def __init__(self, backbone: str, class_names, weights: str = None, input_shape: tuple = None,
                 backbone_options: dict = None, head_units: tuple = (), dropout: float = 0.0,
                 pooling: str = "avg", lora_rank: int = 0, seed: int = 1337):
        self.seed = seed
        self.class_names = tuple(class_names)
        self.model_cfg = ModelConfig(backbone=backbone, weights=weights, backbone_options=dict(backbone_options or {}),
                                     head=HeadConfig(pooling=pooling, dense_units=tuple(head_units), dropout=dropout),
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
        """Class probabilities (N, K) of a batch of images in [0, 255]."""
        return self._built().predict_on_batch(images)

    def evaluate(self, dataset, out_dir: str = None) -> dict:
        """Accuracy, macro F1, per-class report and confusion matrix on a batched (images, labels) dataset;
        the plots and JSON go to `out_dir` (a temporary directory if None)."""
        model = self._built()
        return ImageClassification().evaluate(lambda x: model(x, training=False), dataset, self.class_names,
                                              out_dir or tempfile.mkdtemp(prefix="fmkeras-eval-"), model=model)

    def export(self, base_path: str) -> str:
        """Writes the next SavedModel version under `base_path` (JPEG/PNG bytes or pixels in, probabilities
        and class names out, as `fmkeras serve` serves it); returns its path."""
        model = self._built()
        cfg = RunConfig(model=self.model_cfg, data=self.data_cfg)
        _, path = ImageClassification().export(model, os.fspath(base_path), self.class_names, cfg,
                                               tuple(model.input_shape[1:]), {"backbone": self.model_cfg.backbone})
        return path

    def _built(self):
        if self.model is None:
            raise ConfigError("the classifier is not built yet: call fit(data) or build(input_shape) first")
        return self.model
