"""fmkeras/config/run.py: a config per command; other commands' sections are left out of shared files and
refused when set by name; old run directories' config.json files still load."""
import json

import pytest

from fmkeras.config import (DistillRunConfig, PretrainConfig, PretrainRunConfig, RunConfig, ServeCommandConfig,
                            TuneConfig, TuneRunConfig, apply_overrides, from_dict, load_config, to_dict, validate)
from fmkeras.errors import ConfigError
from fmkeras.recipes import load_recipe

# What `to_dict(RunConfig)` wrote into a run directory's config.json before the per-command split.
OLD_SECTIONS = {
    "serve": {"model_base_path": None, "host": "127.0.0.1", "port": 8501, "versions": [],
              "allowed_hosts": ["localhost"]},
    "tune": {"algorithm": "random", "max_trials": 10, "directory": "tune_results", "space": {}},
    "pretrain": {"method": "simclr", "epochs": 5, "projection_units": [256, 128], "output": None},
    "distill": {"temperature": 4.0, "alpha": 0.1},
}


def test_an_old_run_config_json_with_every_section_loads_as_a_run_config(tmp_path):
    old = {**to_dict(RunConfig(name="old", train=RunConfig().train)), **OLD_SECTIONS}
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = from_dict(RunConfig, json.loads((tmp_path / "config.json").read_text()))
    assert type(cfg) is RunConfig and cfg.name == "old" and validate(cfg) == RunConfig(name="old")
    assert not hasattr(cfg, "tune") and not hasattr(cfg, "serve")
    tuned = from_dict(TuneRunConfig, old)  # the command that owns a section keeps it
    assert tuned.tune.directory == "tune_results" and not hasattr(tuned, "pretrain")


def test_an_unknown_section_is_still_an_error():
    with pytest.raises(ConfigError, match="unknown config field `tunes`"):
        from_dict(RunConfig, {"tunes": {}})


@pytest.mark.parametrize("cls,key,message", [
    (RunConfig, "tune.max_trials", "tune.max_trials is a setting of `fmkeras tune`, not of `fmkeras train`"),
    (RunConfig, "serve.port", "serve.port is a setting of `fmkeras serve`, not of `fmkeras train`"),
    (TuneRunConfig, "pretrain.epochs", "pretrain.epochs is a setting of `fmkeras pretrain`, not of `fmkeras tune`"),
    (DistillRunConfig, "tune.max_trials", "tune.max_trials is a setting of `fmkeras tune`, not of `fmkeras distill`"),
    (ServeCommandConfig, "train.epochs", "train.epochs is a setting of `fmkeras train`, not of `fmkeras serve`"),
])
def test_setting_another_commands_section_names_the_command_that_owns_it(cls, key, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(cls(), {key: 3})
    assert str(err.value).startswith(message)


def test_a_recipe_with_a_tune_section_loads_for_train_and_for_tune():
    train = load_recipe("cnn_fashion_tune", RunConfig)
    assert type(train) is RunConfig and train.name == "cnn_fashion_tune"
    tune = load_recipe("cnn_fashion_tune", TuneRunConfig)
    assert "finetune.unfreeze_layers" in tune.tune.space
    assert (train.model, train.train, train.finetune) == (tune.model, tune.train, tune.finetune)
    assert type(load_recipe("cnn_fashion_tune")) is TuneRunConfig  # by default: the command its sections name
    assert type(load_recipe("cnn_fashion")) is RunConfig
    assert load_recipe("cnn_fashion", PretrainRunConfig).pretrain == PretrainConfig()


def test_a_config_file_loads_as_the_command_its_sections_belong_to(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 2\ntune:\n  max_trials: 4\n")
    assert load_config(str(path)).tune.max_trials == 4
    assert load_config(str(path), RunConfig).train.epochs == 2
    path.write_text("tune:\n  max_trials: 4\npretrain:\n  epochs: 1\n")
    with pytest.raises(ConfigError, match="holds settings of `fmkeras pretrain` and `fmkeras tune`"):
        load_config(str(path))


def test_command_configs_are_run_configs_and_keep_their_cross_checks():
    cfg = TuneRunConfig(name="t", tune=TuneConfig(max_trials=2))
    assert isinstance(cfg, RunConfig) and from_dict(TuneRunConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="`model.lora_rank` replaces staged fine-tuning"):
        apply_overrides(cfg, {"model.lora_rank": 4, "finetune.epochs": 1})
    with pytest.raises(ConfigError, match="`name` must be a non-empty name without '/'"):
        apply_overrides(PretrainRunConfig(), {"name": "a/b"})


def test_the_spelling_from_before_the_split_builds_the_commands_config():
    # notebooks and older scripts wrote RunConfig(pretrain=...): it builds a PretrainRunConfig.
    cfg = RunConfig(name="simclr", pretrain=PretrainConfig(epochs=2))
    assert type(cfg) is PretrainRunConfig and cfg.pretrain.epochs == 2 and cfg.name == "simclr"
    with pytest.raises(ConfigError, match="holds settings of `fmkeras pretrain` and `fmkeras tune`"):
        RunConfig(pretrain=PretrainConfig(), tune=TuneConfig())
    with pytest.raises(TypeError):
        RunConfig(bogus=1)
