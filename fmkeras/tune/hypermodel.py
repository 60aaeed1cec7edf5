"""A keras-tuner HyperModel over the fine-tuning choices declared in `tune.space`.

`build(hp)` turns the trial's values into a RunConfig (stage learning rates, unfreeze depth, head
width, dropout, weight decay, optimizer, augmentation strength, ...) and builds its classifier;
`fit(hp, model, ...)` builds the trial's datasets (the batch size may be a hyperparameter) and
trains both fine-tuning stages, reporting every epoch to the tuner through its callbacks.

`TextHyperModel` is the same for text sources (`data.source=text:...`): each trial adapts its own
`TextVectorization` (text.max_tokens, text.sequence_length may be hyperparameters) and trains ONE text
classifier the way `fmkeras train` trains each ensemble member; `model.ensemble` and
`text.linear_member` apply to the retrained best configuration (fmkeras.tune.retrain), not to trials.

Example:
    hypermodel = hypermodel_for(cfg, load_source(cfg.data), task_for_source(cfg.data.source))
    tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy", max_trials=5)
"""
from __future__ import annotations

import keras_tuner

from fmkeras.config import TuneRunConfig
from fmkeras.data import build_datasets
from fmkeras.data.pipeline import resolve_image_shape
from fmkeras.data.text_pipeline import build_text_datasets
from fmkeras.errors import ConfigError
from fmkeras.train import fit as fit_one_stage, seed_everything
from fmkeras.transfer import build_classifier, build_text_classifier
from fmkeras.tune.space import declare_space, trial_config
from fmkeras.transfer.finetune import fit_stages


class TrialHyperModel(keras_tuner.HyperModel):
    """What every fmkeras hypermodel shares: `base` with the trial's `tune.space` values applied, and
    the best epoch's metrics as the trial's result."""

    def __init__(self, base: TuneRunConfig, source, name: str):
        super().__init__(name=name, tunable=True)
        self.base = base
        self.source = source

    def declare_hyperparameters(self, hp):
        declare_space(hp, self.base.tune.space)

    def config(self, hp) -> TuneRunConfig:
        """The RunConfig this trial trains."""
        declare_space(hp, self.base.tune.space)
        return trial_config(self.base, hp.values)

    def best_epoch(self, history: dict) -> dict:
        """The metrics of the epoch that scored best on `tune.objective` (what the tuner records)."""
        objective = self.base.tune.objective
        if objective not in history:
            raise keras_tuner.errors.FatalError(
                f"`tune.objective` {objective!r} is not a metric of the trials; they report {sorted(history)}")
        values = history[objective]
        best = (min if objective_direction(objective) == "min" else max)(range(len(values)), key=values.__getitem__)
        return {key: series[best] for key, series in history.items()}


class FinetuneHyperModel(TrialHyperModel):
    """Builds and fine-tunes one trial's image classifier from `base` with the trial's `tune.space` values."""

    def __init__(self, base: TuneRunConfig, source):
        super().__init__(base, source, name="finetune")
        self.image_shape = resolve_image_shape(source, base.data)

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
        return self.best_epoch(history)


# Settings that make `fmkeras train` fit several models for text; a trial fits one, so searching them is refused.
ENSEMBLE_SETTINGS = ("model.ensemble", "text.linear_member", "text.linear_weight", "text.linear_l2")


class TextHyperModel(TrialHyperModel):
    """A trial of a text search: one text classifier (its vocabulary adapted to the trial's training
    texts) trained `train.epochs` epochs (or Hyperband's budget) by the same trainer as `fmkeras train`."""

    def __init__(self, base: TuneRunConfig, source):
        searched = sorted(set(ENSEMBLE_SETTINGS) & set(base.tune.space))
        if searched:
            raise ConfigError(f"tune.space: {', '.join(searched)} cannot be searched: each trial trains one text "
                              f"classifier; the retrained best configuration applies model.ensemble and "
                              f"text.linear_member. Remove {', '.join(f'tune.space.{k}' for k in searched)}")
        super().__init__(base, source, name="text")

    def _data(self, cfg: TuneRunConfig):
        return build_text_datasets(self.source, cfg.data, cfg.train.batch_size)

    def build(self, hp):
        cfg = self.config(hp)
        seed_everything(cfg.train)
        return build_text_classifier(cfg.model, cfg.text, self._data(cfg).train_texts, len(self.source.class_names))

    def fit(self, hp, model, trial_dir: str = None, callbacks=(), epochs: int = None, initial_epoch: int = 0,
            **kwargs):
        """Trains the trial's classifier; `epochs`/`initial_epoch` come from Hyperband."""
        cfg = self.config(hp)
        history = fit_one_stage(model, self._data(cfg), cfg.train, trial_dir, epochs=epochs,
                                initial_epoch=initial_epoch, extra_callbacks=callbacks).history
        return self.best_epoch(history)


def hypermodel_for(cfg: TuneRunConfig, source, task) -> TrialHyperModel:
    """The hypermodel of `task` (fmkeras.tasks): text classification or (staged) image fine-tuning."""
    return {"text": TextHyperModel, "image": FinetuneHyperModel}[task.modality](cfg, source)


def objective_direction(name: str) -> str:
    """'min' for losses, 'max' for everything else (accuracy)."""
    return "min" if "loss" in name else "max"
