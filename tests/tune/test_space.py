"""tune.space: config paths -> keras-tuner hyperparameters -> trial configs."""
from __future__ import annotations

import keras_tuner
import pytest

from fmkeras.config import RunConfig, TuneRunConfig, apply_overrides
from fmkeras.errors import ConfigError
from fmkeras.tune.space import AUGMENT_AT_FULL_STRENGTH, declare_space, trial_config

SPACE = {
    "train.learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
    "finetune.learning_rate": {"min": 1e-6, "max": 1e-4, "sampling": "log"},
    "finetune.unfreeze_layers": {"min": 0, "max": 6, "step": 2},
    "model.head.dense_units": [32, 64],
    "model.head.dropout": {"min": 0.0, "max": 0.5},
    "train.weight_decay": [0.0, 1e-4],
    "train.optimizer": ["adam", "sgd"],
    "train.batch_size": [16, 32],
    "augment_strength": {"min": 0.0, "max": 1.0},
    "finetune.epochs": 2,
}


def test_each_entry_kind_becomes_the_matching_hyperparameter():
    hp = keras_tuner.HyperParameters()
    declare_space(hp, SPACE)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"train.learning_rate": "Float", "finetune.learning_rate": "Float",
                     "finetune.unfreeze_layers": "Int", "model.head.dense_units": "Choice",
                     "model.head.dropout": "Float", "train.weight_decay": "Choice", "train.optimizer": "Choice",
                     "train.batch_size": "Choice", "augment_strength": "Float", "finetune.epochs": "Fixed"}
    assert hp.get("train.learning_rate") == pytest.approx(1e-4) and hp.get("finetune.unfreeze_layers") == 0
    assert [p for p in hp.space if p.name == "train.learning_rate"][0].sampling == "log"


def test_trial_values_become_a_validated_run_config():
    values = {"train.learning_rate": 0.003, "finetune.learning_rate": 2e-5, "finetune.unfreeze_layers": 4,
              "model.head.dense_units": 64, "model.head.dropout": 0.25, "train.weight_decay": 1e-4,
              "train.optimizer": "sgd", "train.batch_size": 16, "augment_strength": 0.5, "tuner/epochs": 3}
    cfg = trial_config(RunConfig(), values)
    assert (cfg.train.learning_rate, cfg.finetune.learning_rate, cfg.finetune.unfreeze_layers) == (0.003, 2e-5, 4)
    assert cfg.model.head.dense_units == (64,) and cfg.model.head.dropout == 0.25
    assert (cfg.train.weight_decay, cfg.train.optimizer, cfg.train.batch_size) == (1e-4, "sgd", 16)
    assert cfg.data.augment.rotation == AUGMENT_AT_FULL_STRENGTH["rotation"] / 2
    assert cfg.data.augment.zoom == pytest.approx(AUGMENT_AT_FULL_STRENGTH["zoom"] / 2)


def test_space_is_read_from_config_files(tmp_path):
    path = tmp_path / "tune.yaml"
    path.write_text("tune:\n  algorithm: bayesian\n  space:\n    train.learning_rate: {min: 1.0e-4, max: 1.0e-2}\n")
    from fmkeras.config import load_config
    cfg = load_config(str(path))
    assert cfg.tune.algorithm == "bayesian" and cfg.tune.space == {"train.learning_rate": {"min": 1e-4, "max": 1e-2}}


@pytest.mark.parametrize("space, message", [
    ({"train.learning_rate": {"min": 1e-2, "max": 1e-4}}, "needs min <= max"),
    ({"train.learning_rate": {"low": 1e-4}}, "tune.space.train.learning_rate"),
    ({"train.optimizer": []}, "lists no choices"),
    ({"train.learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "cubic"}}, "sampling"),
])
def test_bad_space_entries_name_the_entry(space, message):
    with pytest.raises(ConfigError, match=message):
        declare_space(keras_tuner.HyperParameters(), space)


def test_unknown_config_path_in_space_is_a_config_error():
    with pytest.raises(ConfigError, match="tune.space: unknown config field `train.lr`"):
        trial_config(RunConfig(), {"train.lr": 0.1})
    with pytest.raises(ConfigError, match="`tune.algorithm` must be one of random, bayesian, hyperband"):
        apply_overrides(TuneRunConfig(), {"tune.algorithm": "grid"})
