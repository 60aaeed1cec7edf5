"""`fmkeras tune` and the --strategy/--algorithm/--max_trials/--tune_dir flags reach the config."""
from __future__ import annotations

import pytest

from fmkeras.cli.flags import FLAGS, config_from_flags
from fmkeras.config import RunConfig, TuneRunConfig
from fmkeras.errors import ConfigError


@pytest.fixture
def parse():
    def _parse(*args, cls=TuneRunConfig):
        FLAGS.unparse_flags()
        FLAGS(["fmkeras", *args])
        return config_from_flags(cls)
    yield _parse
    FLAGS.unparse_flags()


def test_flags_override_distribute_and_tune_fields(parse, tmp_path):
    cfg = parse("--recipe=cnn_fashion_tune", "--strategy=multiworker", "--algorithm=hyperband", "--max_trials=3",
                f"--tune_dir={tmp_path}")
    assert cfg.distribute.strategy == "multiworker"
    assert (cfg.tune.algorithm, cfg.tune.max_trials, cfg.tune.directory) == ("hyperband", 3, str(tmp_path))
    assert "finetune.unfreeze_layers" in cfg.tune.space and cfg.name == "cnn_fashion_tune"


def test_the_tune_recipe_trains_without_its_tune_section_and_train_refuses_tune_flags(parse, tmp_path):
    cfg = parse("--recipe=cnn_fashion_tune", cls=RunConfig)
    assert type(cfg) is RunConfig and cfg.name == "cnn_fashion_tune"
    with pytest.raises(ConfigError, match="tune.directory is a setting of `fmkeras tune`, not of `fmkeras train`"):
        parse("--recipe=cnn_fashion_tune", f"--tune_dir={tmp_path}", cls=RunConfig)


def test_tune_command_is_registered_and_reports_an_empty_space(capsys):
    from fmkeras.cli.main import COMMANDS, main, usage
    assert COMMANDS["tune"] == "fmkeras.cli.tune" and "tune " in usage()
    FLAGS.unparse_flags()
    argv = FLAGS(["fmkeras", "tune", "--recipe=cnn_fashion"])
    try:
        assert main(argv) == 2
    finally:
        FLAGS.unparse_flags()
    assert capsys.readouterr().err.strip().startswith("fmkeras: error: `tune.space` is empty")


def test_tune_refuses_a_device_strategy_instead_of_ignoring_it(tmp_path):
    from fmkeras.config import apply_overrides
    from fmkeras.errors import ConfigError
    from fmkeras.recipes import load_recipe
    from fmkeras.tune import run_search
    cfg = apply_overrides(load_recipe("cnn_fashion_tune"), {"distribute.strategy": "mirrored",
                                                            "tune.directory": str(tmp_path)})
    with pytest.raises(ConfigError, match="keras-tuner workers.*distribute.strategy='mirrored'"):
        run_search(cfg)
