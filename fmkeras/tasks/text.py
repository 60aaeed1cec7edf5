"""Text classification: raw strings in, one class out.

The task owns what is particular to text: loading a text source (`text:FILE.csv`, `text:DIR`, `text:debian`,
`text:tfds:NAME`), the string datasets, the classifier (TextVectorization + text backbone + head, with an
optional ensemble of members and a TF-IDF linear member), the evaluation (misclassified texts) and the
SavedModel signature (`serving_default` takes strings; tokenizing is in the graph).

Under MirroredStrategy the texts are tokenized in the input pipeline and the model's numeric core (the same
layers and weights) is fitted: Keras' `fit` under a distribution strategy cannot handle string batches.

Example:
    task = TextClassification()
    data = task.build_datasets(task.load_source(cfg), cfg)
    model = task.build_model(cfg, data)
"""
from __future__ import annotations

import dataclasses
import logging
import os

from fmkeras.config import RunConfig
from fmkeras.data.text import load_text_source
from fmkeras.data.text_pipeline import build_text_datasets, vectorized_datasets
from fmkeras.errors import ConfigError
from fmkeras.evaluate import evaluate_text_predictions
from fmkeras.export import export_text_saved_model
from fmkeras.tasks.image import refuse_multi_label_settings
from fmkeras.train import seed_everything
from fmkeras.transfer import build_text_classifier
from fmkeras.transfer.ensemble import average_classifiers, first_member
from fmkeras.transfer.linear_text import fit_linear_text_classifier
from fmkeras.transfer.text_classifier import VECTORIZER_LAYER, split_vectorizers

log = logging.getLogger("fmkeras")


class TextClassification:
    """The text-classification task (see the module docstring)."""
    modality = "text"
    name = "text_classification"
    description = "text"
    commands = ("train", "tune", "evaluate", "export", "lr_find", "evaluate --ensemble")
    instead = {"pretrain": "text backbones pretrain with masked tokens: make text-pretrain, i.e. "
                           "python -m fmkeras.pretrain.text_mlm"}
    # Why each strategy a text run cannot train under is refused.
    REFUSED_STRATEGIES = {
        "multiworker": "Keras 3 `fit` does not run under MultiWorkerMirroredStrategy and the multi-worker loop "
                       "cannot pass string batches between replicas",
        "tpu": "TextVectorization's string ops do not run on a TPU"}

    def check_config(self, cfg: RunConfig):
        """Refuses, by name, the settings text runs do not have (among them the multi-label loss and head)."""
        refuse_multi_label_settings(cfg, "text")
        if cfg.export.tta is not None:
            raise ConfigError(f"`export.tta` augments images (mirrors, shifts); text sources have none. Received: "
                              f"export.tta={cfg.export.tta!r}, data.source={cfg.data.source!r}")
        if cfg.data.balance != "none":
            raise ConfigError(f"`data.balance` is not supported for text sources yet. Received: "
                              f"data.balance={cfg.data.balance!r}, data.source={cfg.data.source!r}")
        if cfg.train.precision not in ("float32", "auto"):
            # Text classifiers' heads are not pinned to float32: their softmax would run in the mixed dtype.
            raise ConfigError(f"`train.precision` must be float32 for text sources. Received: "
                              f"train.precision={cfg.train.precision!r}, data.source={cfg.data.source!r}")

    def precision(self, cfg: RunConfig) -> str:
        """The Keras policy text runs train in: float32 (`auto` included; see check_config)."""
        return "float32"

    def load_source(self, cfg: RunConfig):
        return load_text_source(cfg.data, cfg.text)

    def prepare(self, cfg: RunConfig, source) -> RunConfig:
        return cfg

    def build_datasets(self, source, cfg: RunConfig, batch_size: int = None, deterministic: bool = None):
        return build_text_datasets(source, cfg.data, batch_size or cfg.train.batch_size)

    def build_model(self, cfg: RunConfig, data):
        return build_text_classifier(cfg.model, cfg.text, data.train_texts, len(data.class_names))

    def check_strategy(self, cfg: RunConfig, strategy_name: str):
        """Text runs train under distribute.strategy=default or mirrored."""
        if strategy_name in self.REFUSED_STRATEGIES:
            raise ConfigError(f"text runs train under distribute.strategy=default or mirrored "
                              f"({self.REFUSED_STRATEGIES[strategy_name]}). Received: distribute.strategy="
                              f"{cfg.distribute.strategy!r} (resolved to {strategy_name})")

    def fit(self, model, data, cfg: RunConfig, run_dir: str, loop, total_epochs: int = None):
        """Trains `model` (member 0) and, with `model.ensemble` > 1 or `text.linear_member`, the other members;
        returns (the model to save, member 0's TrainResult, per-member facts or None)."""
        count, linear = cfg.model.ensemble, cfg.text.linear_member
        if count == 1 and not linear:
            return model, self._fit_one(model, data, cfg, run_dir, loop, total_epochs), None
        models, results, facts = [], [], []
        for i in range(count):
            member_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=cfg.train.seed + i))
            if i:
                seed_everything(member_cfg.train)
                with loop.strategy.scope():
                    model = self.build_model(member_cfg, data)
            member_dir = os.path.join(run_dir, "members", str(i))
            result = self._fit_one(model, data, member_cfg, member_dir, loop, total_epochs)
            models.append(model)
            results.append(result)
            val, accuracy = result.history.get("val_accuracy"), result.history.get("accuracy")
            facts.append({"member": i, "kind": cfg.model.backbone, "seed": member_cfg.train.seed,
                          "run_dir": member_dir, "train_seconds": round(result.seconds, 2),
                          "best_val_accuracy": round(max(val), 4) if val else None,  # None without a validation split
                          "final_train_accuracy": round(accuracy[-1], 4) if accuracy else None})
            log.info("ensemble member %d/%d (seed %d) trained in %.1f s", i + 1, count, member_cfg.train.seed,
                     result.seconds)
        seconds, weights = sum(r.seconds for r in results), None
        if linear:
            member, linear_facts = fit_linear_text_classifier(cfg.text, data.train_texts, data.train_labels,
                                                              data.val_texts, data.val_labels, len(data.class_names))
            models.append(member)
            facts.append({"member": count, "kind": "tfidf_logistic_regression", **linear_facts})
            seconds += linear_facts["seconds"]
            weights = [(1 - cfg.text.linear_weight) / count] * count + [cfg.text.linear_weight]
            log.info("linear member fitted in %.1f s (l2 %g)", linear_facts["seconds"], linear_facts["l2"])
        model = average_classifiers(models, name=f"{cfg.model.backbone}_text_ensemble", weights=weights)
        return model, results[0], {"members": facts, "weights": weights, "train_seconds": round(seconds, 2),
                                   "val_accuracy": _accuracy(model, data.val)}

    def _fit_one(self, model, data, cfg: RunConfig, run_dir: str, loop, total_epochs):
        if loop.strategy_name == "default":
            return loop(model, data, cfg, run_dir, total_epochs=total_epochs)
        with loop.strategy.scope():
            vectorizers, core = split_vectorizers(model)
        return loop(core, vectorized_datasets(data, vectorizers), cfg, run_dir, total_epochs=total_epochs)

    def evaluate(self, predict, dataset, class_names, out_dir: str, prefix: str = "test", model=None,
                 validation=None, tta=None) -> dict:
        """Accuracy, per-class report and the misclassified texts of `predict` on `dataset` (`validation` is not
        used; `tta` is refused by check_config: views are images)."""
        return evaluate_text_predictions(predict, dataset, class_names, out_dir, prefix=prefix)

    def summary(self, report: dict) -> str:
        """One line of `evaluate`'s report for the console."""
        return f"accuracy: {report['accuracy']}  macro F1: {report['macro_f1']}  ({report['num_examples']} texts)"

    def export(self, model, base_path: str, class_names, cfg: RunConfig, data_shape, metadata: dict,
               evaluation: dict = None) -> tuple:
        """Next SavedModel version under `base_path` (its signature takes strings): (version, path)."""
        return export_text_saved_model(model, base_path, class_names, extra_metadata=metadata)

    def report_fields(self, data, model, extra) -> dict:
        """What metrics.json says that only this task knows."""
        return {"image_shape": None, "vocabulary_size": first_member(model).get_layer(VECTORIZER_LAYER).vocabulary_size(),
                "ensemble": extra}

    def input_shape(self, data):
        return None

    def prepare_retrain(self, cfg: RunConfig, source) -> RunConfig:
        """`cfg` with `text.linear_l2` narrowed to the value the search's validation split picks, when the run
        fits a linear member over several values (a retrain on train+val has no validation split to pick on)."""
        if not cfg.text.linear_member or len(cfg.text.linear_l2) == 1:
            return cfg
        data = self.build_datasets(source, cfg)
        if not data.num_val:
            return cfg
        _, facts = fit_linear_text_classifier(cfg.text, data.train_texts, data.train_labels, data.val_texts,
                                              data.val_labels, len(data.class_names))
        log.info("linear member: l2 %g picked on the search's validation split %s", facts["l2"],
                 facts["val_accuracy_by_l2"])
        return dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, linear_l2=(facts["l2"],)))


def _accuracy(model, dataset):
    """Accuracy of `model` on a batched (texts, int labels) dataset; None without one."""
    if dataset is None:
        return None
    right = total = 0
    for texts, labels in dataset:
        predicted = model(texts, training=False).numpy().argmax(-1)
        right += int((predicted == labels.numpy().reshape(-1)).sum())
        total += len(predicted)
    return round(right / total, 4) if total else None
