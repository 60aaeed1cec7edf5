"""A keras-tuner HyperModel over the fine-tuning choices declared in `tune.space`.

`build(hp)` turns the trial's values into a RunConfig (stage learning rates, unfreeze depth, head
width, dropout, weight decay, optimizer, augmentation strength, ...) and builds its classifier;
`fit(hp, model, ...)` builds the trial's datasets (the batch size may be a hyperparameter) and
trains both fine-tuning stages, reporting every epoch to the tuner through its callbacks.

Example:
    hypermodel = FinetuneHyperModel(cfg, load_source(cfg.data))
    tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy", max_trials=5)
"""
from __future__ import annotations

import keras_tuner

from fmkeras.config import RunConfig
from fmkeras.data import build_datasets
from fmkeras.data.pipeline import resolve_image_shape
from fmkeras.train import seed_everything
from fmkeras.transfer import build_classifier
from fmkeras.tune.space import declare_space, trial_config
from fmkeras.transfer.finetune import fit_stages


class FinetuneHyperModel(keras_tuner.HyperModel):
    """Builds and fine-tunes one trial's model from `base` with the trial's `tune.space` values."""

    def __init__(self, base: RunConfig, source):
        super().__init__(name="finetune", tunable=True)
        self.base = base
        self.source = source
        self.image_shape = resolve_image_shape(source, base.data)

    def declare_hyperparameters(self, hp):
        declare_space(hp, self.base.tune.space)

    def config(self, hp) -> RunConfig:
        """The RunConfig this trial trains."""
        declare_space(hp, self.base.tune.space)
        return trial_config(self.base, hp.values)

    def build(self, hp):
        cfg = self.config(hp)
        seed_everything(cfg.train)
        return build_classifier(cfg.model, self.image_shape, len(self.source.class_names))

    def fit(self, hp, model, trial_dir: str = None, callbacks=(), epochs: int = None, initial_epoch: int = 0,
            **kwargs):
        """Trains the trial; `epochs`/`initial_epoch` come from Hyperband. Returns the best epoch's metrics."""
        cfg = self.config(hp)
        data = build_datasets(self.source, cfg.data, cfg.train.batch_size)
        history = fit_stages(model, data, cfg, trial_dir, total_epochs=epochs, initial_epoch=initial_epoch,
                             extra_callbacks=callbacks).history
        objective = self.base.tune.objective
        if objective not in history:
            raise keras_tuner.errors.FatalError(
                f"`tune.objective` {objective!r} is not a metric of the trials; they report {sorted(history)}")
        values = history[objective]
        best = (min if objective_direction(objective) == "min" else max)(range(len(values)), key=values.__getitem__)
        return {key: series[best] for key, series in history.items()}


def objective_direction(name: str) -> str:
    """'min' for losses, 'max' for everything else (accuracy)."""
    return "min" if "loss" in name else "max"
