"""Multi-label image classification: pixels in, any number of classes out.

The task reuses the image task's source loading, tf.data pipeline and classifier, with what is particular
to several labels per image: multi-hot (N, K) labels (`multilabel:FILE.csv` sources), one sigmoid per class
(`model.head.multi_label`), binary cross-entropy (`train.loss=binary_crossentropy`, set by `prepare`),
per-class thresholds picked on the validation split, mAP and micro/macro F1 (fmkeras.evaluate.multilabel),
and SavedModel signatures returning per-class `probabilities` and `labels` (booleans at the thresholds).

Settings that assume one class per example are refused by name in `check_config`, before anything is
loaded or written.

Example:
    task = MultiLabelClassification()
    task.check_config(cfg)                              # refuses MixUp, labels_per_class, ... by name
    cfg = task.prepare(cfg, task.load_source(cfg))     # loss and head set for multi-label
"""
from __future__ import annotations

import dataclasses

from fmkeras.config import RunConfig
from fmkeras.errors import ConfigError
from fmkeras.evaluate.multilabel import evaluate_multi_label_predictions
from fmkeras.evaluate.tta import tta_predict, tta_views
from fmkeras.export import export_saved_model
from fmkeras.tasks.image import MULTI_LABEL_LOSS, ImageClassification

def _single_label_settings(cfg: RunConfig) -> dict:
    """Field -> (value, default) of the settings that assume one class per example."""
    return {"data.labels_per_class": (cfg.data.labels_per_class, None), "data.balance": (cfg.data.balance, "none"),
            "data.label_noise": (cfg.data.label_noise, 0.0), "data.augment.mixup": (cfg.data.augment.mixup, 0.0),
            "data.augment.cutmix": (cfg.data.augment.cutmix, 0.0), "model.head.binary": (cfg.model.head.binary, False),
            "train.adversarial": (cfg.train.adversarial, "none")}


class MultiLabelClassification(ImageClassification):
    """The multi-label image-classification task (see the module docstring)."""
    modality = "image"
    name = "multi_label_classification"
    description = "multi-label image"
    commands = ("train", "evaluate", "export")
    instead = {}

    def check_config(self, cfg: RunConfig):
        """ConfigError naming the first setting that assumes one class per example (and the image task's)."""
        for name, (value, default) in _single_label_settings(cfg).items():
            if value != default:
                raise ConfigError(f"`{name}` assumes one class per example and is not supported for multi-label "
                                  f"sources; leave it at {default!r}. Received: {name}={value!r}, "
                                  f"data.source={cfg.data.source!r}")
        if cfg.train.loss not in ("crossentropy", MULTI_LABEL_LOSS):
            raise ConfigError(f"`train.loss` must be {MULTI_LABEL_LOSS} (or the default, which multi-label runs "
                              f"replace by it) for multi-label sources. Received: train.loss={cfg.train.loss!r}")
        self.refuse_ensemble(cfg)

    def prepare(self, cfg: RunConfig, source) -> RunConfig:
        """`cfg` with binary cross-entropy and the sigmoid head (and `data.image_size` as for images), before
        config.json is written."""
        cfg = dataclasses.replace(
            cfg, train=dataclasses.replace(cfg.train, loss=MULTI_LABEL_LOSS),
            model=dataclasses.replace(cfg.model, head=dataclasses.replace(cfg.model.head, multi_label=True)))
        return super().prepare(cfg, source)

    def check_strategy(self, cfg: RunConfig, strategy_name: str):
        """Multi-label runs train under every strategy but multiworker, whose loop trains with cross-entropy."""
        if strategy_name == "multiworker":
            raise ConfigError(f"multi-label runs train under distribute.strategy=default, mirrored or tpu (the "
                              f"multi-worker loop trains with cross-entropy, not {MULTI_LABEL_LOSS}). Received: "
                              f"distribute.strategy={cfg.distribute.strategy!r} (resolved to {strategy_name})")

    def evaluate(self, predict, dataset, class_names, out_dir: str, prefix: str = "test", model=None,
                 validation=None, tta=None) -> dict:
        """mAP, micro/macro F1 and per-class AP/F1 of `predict` on `dataset`, at per-class thresholds picked on
        `validation` (0.5 without it). `tta`: the test-time-augmented mAP and F1 too (thresholds picked on the
        augmented validation scores), under "tta"."""
        report = evaluate_multi_label_predictions(predict, dataset, class_names, out_dir, prefix=prefix,
                                                  validation=validation)
        if tta is not None:
            augmented = evaluate_multi_label_predictions(tta_predict(predict, tta), dataset, class_names, out_dir,
                                                         prefix=f"{prefix}_tta", validation=validation)
            report["tta"] = {"mode": str(tta), "views": tta_views(tta), "mAP": augmented["mAP"],
                             "micro_f1": augmented["micro_f1"], "macro_f1": augmented["macro_f1"],
                             "thresholds": augmented["thresholds"], "mAP_without_tta": report["mAP"]}
        return report

    def summary(self, report: dict) -> str:
        return (f"mAP: {report['mAP']}  micro F1: {report['micro_f1']}  macro F1: {report['macro_f1']}  "
                f"(thresholds: {report['threshold_source']}; {report['num_examples']} images)")

    def export(self, model, base_path: str, class_names, cfg: RunConfig, data_shape, metadata: dict,
               evaluation: dict = None) -> tuple:
        """Next SavedModel version under `base_path` whose signatures return per-class `probabilities` and
        `labels` at the thresholds of `evaluation` (the run's test report; 0.5 each without one)."""
        thresholds = evaluation["thresholds"] if evaluation else [0.5] * len(class_names)
        source = evaluation["threshold_source"] if evaluation else "default_0.5"
        return export_saved_model(model, base_path, class_names, data_shape,
                                  extra_metadata={**metadata, "task": "multi_label", "threshold_source": source},
                                  crop=cfg.data.center_crop, tta=cfg.export.tta, thresholds=thresholds)
