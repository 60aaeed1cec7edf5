"""One text-classification run end to end, the text twin of `experiment.run_training`.

Same run directory layout (config.json, model.keras, history.csv, metrics.json, plots/, logs/,
checkpoints/), same trainer and the same export path; only the data (texts, not pixels), the model
(strings in: TextVectorization + text backbone) and the per-example evaluation output differ.
`experiment.run_training` sends every `data.source=text:...` config here.

Example:
    report = run_text_training(load_recipe("text_debian"))
"""
from __future__ import annotations

import dataclasses
import logging
import os

from fmkeras.atomic_files import write_with
from fmkeras.config import DistributeConfig, RunConfig, to_dict
from fmkeras.data.text import load_text_source
from fmkeras.data.text_pipeline import build_text_datasets, vectorized_datasets
from fmkeras.errors import ConfigError
from fmkeras.evaluate import evaluate_text_predictions, plot_history, write_json
from fmkeras.train import fit, seed_everything
from fmkeras.train.strategy import build_strategy, resolve_strategy_name, scale_for_replicas, strategy_name
from fmkeras.transfer import build_text_classifier, trainable_parameter_count
from fmkeras.transfer.ensemble import average_classifiers, first_member
from fmkeras.transfer.linear_text import fit_linear_text_classifier
from fmkeras.transfer.text_classifier import VECTORIZER_LAYER, split_vectorizers
from fmkeras.transfer.weight_hashes import write_sha256_sidecar

log = logging.getLogger("fmkeras")


def run_text_training(cfg: RunConfig) -> dict:
    """Trains a text classifier for `cfg`, evaluates on the test split, writes the run dir and exports."""
    return train_text_source(cfg, load_text_source(cfg.data, cfg.text))


def train_text_source(cfg: RunConfig, source) -> dict:
    """`run_text_training` on an already loaded text `source` (`fmkeras tune` retrains its best trial
    on the search's train+val texts this way). Returns the run report (also in metrics.json)."""
    from fmkeras.experiment import MODEL_FILE, export_model, make_run_dir
    strategy = text_strategy(cfg.distribute)
    given, cfg = cfg, scale_for_replicas(cfg, strategy.num_replicas_in_sync)  # global batch, scaled LR
    seed_everything(cfg.train)
    data = build_text_datasets(source, cfg.data, cfg.train.batch_size)
    # Built before the run directory: a wrong backbone fails before anything is written.
    with strategy.scope():
        first = build_text_classifier(cfg.model, cfg.text, data.train_texts, len(data.class_names))
    run_dir = make_run_dir(cfg)
    write_json(os.path.join(run_dir, "config.json"), to_dict(given))
    model, result, members = _train_members(cfg, data, run_dir, first, strategy)
    write_with(model.save, os.path.join(run_dir, MODEL_FILE))  # a crash never leaves half a model.keras
    write_sha256_sidecar(os.path.join(run_dir, MODEL_FILE))  # `--weights=`/`evaluate` check it on load
    plot_history(result.history, os.path.join(run_dir, "plots", "training_curves.png"))
    test_set, split = (data.test, "test") if data.test is not None else (data.val, "validation")
    test = evaluate_text_predictions(lambda x: model(x, training=False), test_set, data.class_names,
                                     os.path.join(run_dir, "plots"), prefix=split) if test_set is not None else None
    report = {
        "run_dir": run_dir, "name": cfg.name, "data": source.name, "modality": "text", "evaluated_on": split,
        "class_names": list(data.class_names), "image_shape": None,
        "vocabulary_size": first_member(model).get_layer(VECTORIZER_LAYER).vocabulary_size(),
        "num_train": data.num_train, "num_val": data.num_val, "num_test": data.num_test,
        "params": model.count_params(), "trainable_params": trainable_parameter_count(model),
        "lora_rank": cfg.model.lora_rank,
        "train_seconds": members["train_seconds"] if members else round(result.seconds, 2),
        "epochs": result.epochs,
        "history": result.history, "stopped_early": result.stopped_early, "skipped": [], "skipped_count": 0,
        "test": test, "ensemble": members,
        "distribute": {"strategy": strategy_name(strategy), "replicas": strategy.num_replicas_in_sync,
                       "global_batch_size": cfg.train.batch_size, "learning_rate": cfg.train.learning_rate},
    }
    if cfg.export.enabled:
        report["export"] = export_model(model, cfg, data.class_names, None)
    write_json(os.path.join(run_dir, "metrics.json"), report)
    return report


def text_strategy(cfg: DistributeConfig):
    """The strategy of a text run: default or mirrored (`distribute.strategy`, `auto` as for images)."""
    name = resolve_strategy_name(cfg)
    if name not in ("default", "mirrored"):
        why = {"multiworker": "Keras 3 `fit` does not run under MultiWorkerMirroredStrategy and the multi-worker "
                              "loop reads image batches",
               "tpu": "TextVectorization's string ops do not run on a TPU"}[name]
        raise ConfigError(f"text runs train under distribute.strategy=default or mirrored ({why}). "
                          f"Received: distribute.strategy={cfg.strategy!r} (resolved to {name})")
    return build_strategy(cfg)


def fit_text(model, data, train_cfg, run_dir: str, strategy):
    """`fit` of a string-input classifier. Under a distribution strategy the texts are tokenized in the
    input pipeline and the model's numeric core (the same layers and weights) is fitted: Keras' `fit`
    under MirroredStrategy cannot handle string batches."""
    if strategy_name(strategy) == "default":
        return fit(model, data, train_cfg, run_dir)
    with strategy.scope():
        vectorizers, core = split_vectorizers(model)
        return fit(core, vectorized_datasets(data, vectorizers), train_cfg, run_dir)


def _train_members(cfg: RunConfig, data, run_dir: str, first, strategy) -> tuple:
    """(model, the first member's TrainResult, per-member facts or None). `first` is member 0, built
    under train.seed. With `model.ensemble` = N > 1, N classifiers are trained one after another with
    seeds train.seed + i, each in <run_dir>/members/<i>/ (its own checkpoints, history.csv, logs), and
    averaged into one model. `text.linear_member` adds a converged TF-IDF logistic regression with weight
    `text.linear_weight` (the N classifiers share the rest equally)."""
    count, linear = cfg.model.ensemble, cfg.text.linear_member
    if count == 1 and not linear:
        return first, fit_text(first, data, cfg.train, run_dir, strategy), None
    models, results, facts = [], [], []
    for i in range(count):
        train = dataclasses.replace(cfg.train, seed=cfg.train.seed + i)
        if i:
            seed_everything(train)
        model = first
        if i:
            with strategy.scope():
                model = build_text_classifier(cfg.model, cfg.text, data.train_texts, len(data.class_names))
        member_dir = os.path.join(run_dir, "members", str(i))
        result = fit_text(model, data, train, member_dir, strategy)
        models.append(model)
        results.append(result)
        val, accuracy = result.history.get("val_accuracy"), result.history.get("accuracy")
        facts.append({"member": i, "kind": cfg.model.backbone, "seed": train.seed, "run_dir": member_dir,
                      "train_seconds": round(result.seconds, 2),
                      "best_val_accuracy": round(max(val), 4) if val else None,  # None without a validation split
                      "final_train_accuracy": round(accuracy[-1], 4) if accuracy else None})
        log.info("ensemble member %d/%d (seed %d) trained in %.1f s", i + 1, count, train.seed, result.seconds)
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
