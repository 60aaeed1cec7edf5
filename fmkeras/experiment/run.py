"""One run end to end: data -> model -> train -> evaluate -> export, recorded in a run directory.

`Experiment` is the one way a run happens: `fmkeras train`, the tune retrain, notebooks and benchmarks all go
through it, so a run directory (fmkeras.experiment.run_dir) and its metrics.json
(fmkeras.experiment.report) look the same whoever made it and whatever the task (image, multi-label or
text). The task (fmkeras.tasks) supplies the data, the model, the evaluation and the export signatures; the
experiment owns the run directory, the strategy, the training loop (fmkeras.experiment.loops) and the report.

Distribution (`distribute.strategy`): the model is built and fit under the selected tf.distribute strategy;
multi-worker jobs train with the multi-worker loop, and tasks other than the chief write to
<run_dir>/workers/<task>/.

Example:
    report = Experiment(load_recipe("cnn_fashion")).run()
    print(report["run_dir"], report["test"]["accuracy"])
"""
from __future__ import annotations

import dataclasses
import logging
import os

from fmkeras.atomic_files import write_with
from fmkeras.config import RunConfig, to_dict
from fmkeras.evaluate import plot_history, write_json
from fmkeras.experiment.loops import Loop
from fmkeras.experiment.report import run_report
from fmkeras.experiment.run_dir import MODEL_FILE, make_run_dir
from fmkeras.model_files.weight_hashes import write_sha256_sidecar
from fmkeras.tasks import task_for_source
from fmkeras.train import restores_dtype_policy, seed_everything
from fmkeras.train.strategy import (build_strategy, is_chief, resolve_strategy_name, scale_for_replicas,
                                    shard_dataset, strategy_name, task_label)
from fmkeras.transfer import trainable_parameter_count

log = logging.getLogger("fmkeras")


class Experiment:
    """A run of `cfg`.

    source: an already loaded source to train on instead of `cfg.data`'s (the tune retrain passes the
        search's training + validation examples).
    total_epochs: overrides the sum of the stages' epochs (the tune retrain passes Hyperband's budget).
    """

    def __init__(self, cfg: RunConfig, source=None, total_epochs: int = None):
        self.cfg = cfg
        self.task = task_for_source(cfg.data.source)
        self.source = source
        self.total_epochs = total_epochs

    @restores_dtype_policy
    def run(self) -> dict:
        """Trains, evaluates on the test split (else validation), writes the run directory and exports.
        Returns the run report (also written to metrics.json)."""
        cfg, task = self.cfg, self.task
        task.check_config(cfg)
        task.check_strategy(cfg, resolve_strategy_name(cfg.distribute))
        strategy = build_strategy(cfg.distribute)
        loop = Loop(strategy, backup_every_steps=cfg.distribute.backup_every_steps)
        loop.check(cfg)
        # `train.precision=auto`: the policy this machine gets, so config.json records what the run used
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=task.precision(cfg)))
        seed_everything(cfg.train)
        # Data and model first: a bad source or backbone fails before anything is written.
        source = self.source if self.source is not None else task.load_source(cfg)
        cfg = task.prepare(cfg, source)
        given, cfg = cfg, scale_for_replicas(cfg, strategy.num_replicas_in_sync)  # global batch, scaled LRs
        data = task.build_datasets(source, cfg)
        if loop.name == "multi_worker":
            data.train, data.val = (shard_dataset(ds, cfg.distribute.shard_policy) for ds in (data.train, data.val))
        with strategy.scope():
            model = task.build_model(cfg, data)
        run_dir = shared_dir = make_run_dir(cfg)
        if not is_chief(strategy):  # other workers of a multi-worker job keep their files apart
            cfg = dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, enabled=False))
            run_dir = make_run_dir(dataclasses.replace(cfg, run_dir=os.path.join(shared_dir, "workers",
                                                                                  task_label(strategy))))
        loop.backup_dir = os.path.join(shared_dir, "backup")
        write_json(os.path.join(run_dir, "config.json"), to_dict(given))
        for path, reason in getattr(data, "skipped", []):
            log.warning("skipped %s: %s", path, reason)
        model, result, extra = task.fit(model, data, cfg, run_dir, loop, total_epochs=self.total_epochs)
        write_with(model.save, os.path.join(run_dir, MODEL_FILE))  # a crash never leaves half a model.keras
        write_sha256_sidecar(os.path.join(run_dir, MODEL_FILE))  # `--weights=`/`evaluate` check it on load
        plot_history(result.history, os.path.join(run_dir, "plots", "training_curves.png"))
        report = run_report(**self._fields(cfg, source, data, model, result, extra, run_dir, strategy))
        write_json(os.path.join(run_dir, "metrics.json"), report)
        return report

    def _fields(self, cfg, source, data, model, result, extra, run_dir, strategy) -> dict:
        task = self.task
        test_set, split = (data.test, "test") if data.test is not None else (data.val, "validation")
        # The validation split goes along for what the task picks on it (multi-label: per-class thresholds).
        test = task.evaluate(lambda x: model(x, training=False), test_set, data.class_names,
                             os.path.join(run_dir, "plots"), prefix=split, model=model,
                             validation=data.val, tta=cfg.export.tta) if test_set is not None else None
        skipped = list(getattr(data, "skipped", []))
        pruning = None
        if cfg.train.prune_sparsity:
            from fmkeras.train.pruning import sparsity_report
            pruning = {"target": cfg.train.prune_sparsity, **sparsity_report(model)}
        return {
            "run_dir": run_dir, "name": cfg.name, "task": task.name,
            "modality": task.modality, "data": source.name, "evaluated_on": split if test_set is not None else None,
            "class_names": list(data.class_names), **task.report_fields(data, model, extra),
            "num_train": data.num_train, "num_val": data.num_val, "num_test": data.num_test,
            "params": model.count_params(), "trainable_params": trainable_parameter_count(model),
            "lora_rank": cfg.model.lora_rank,
            "train_seconds": extra["train_seconds"] if extra else round(result.seconds, 2), "epochs": result.epochs,
            "history": result.history, "stages": getattr(result, "stages", []), "stopped_early": result.stopped_early,
            "resume": getattr(result, "resume", None) or {"enabled": False},  # the multi-worker loop has its own
            "skipped": [{"path": p, "reason": r} for p, r in skipped], "skipped_count": len(skipped),
            "test": test, "pruning": pruning,
            "distribute": {"strategy": strategy_name(strategy), "replicas": strategy.num_replicas_in_sync,
                           "task": task_label(strategy), "global_batch_size": cfg.train.batch_size,
                           "learning_rate": cfg.train.learning_rate,
                           "resumed_from_step": getattr(result, "resumed_from_step", 0),
                           "steps_run": getattr(result, "steps_run", None),
                           "global_step": getattr(result, "global_step", None)},
            "export": export_model(model, cfg, data.class_names, task.input_shape(data), task, evaluation=test)
            if cfg.export.enabled else None,
        }


def export_model(model, cfg: RunConfig, class_names, input_shape, task=None, evaluation: dict = None) -> dict:
    """Exports the next SavedModel version under <export.base_dir>/<export.model_name or name>.

    evaluation: the run's test report, for what the export takes from it (multi-label: the thresholds)."""
    task = task or task_for_source(cfg.data.source)
    name = cfg.export.model_name or cfg.name
    metadata = {"run_name": cfg.name, "backbone": cfg.model.backbone}
    version, path = task.export(model, os.path.join(cfg.export.base_dir, name), class_names, cfg, input_shape,
                                metadata, evaluation=evaluation)
    return {"model_name": name, "version": version, "path": path}


def run_training(cfg: RunConfig) -> dict:
    """`Experiment(cfg).run()`: what `fmkeras train` does."""
    return Experiment(cfg).run()


def with_image_size(cfg: RunConfig, source) -> RunConfig:
    """`cfg` with `data.image_size` set when the images of `source` differ in size (the image task's `prepare`)."""
    return task_for_source(cfg.data.source).prepare(cfg, source)
