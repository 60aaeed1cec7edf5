"""Command configs: `RunConfig` (one training run) and the configs of the commands that extend it.

`fmkeras train`, `evaluate`, `export`, ... read a `RunConfig`; `fmkeras tune` a `TuneRunConfig` (a RunConfig
plus `tune`), `fmkeras pretrain` a `PretrainRunConfig`, `fmkeras distill` a `DistillRunConfig`, so code that
trains reads any of them the same way. `fmkeras serve` reads the `serve` section alone (`ServeCommandConfig`
holds it for the file/`--set` machinery).

Example:
    cfg = load_config("fmkeras/recipes/cnn_fashion_tune.yaml")   # a TuneRunConfig: the file has `tune:`
    cfg = apply_overrides(cfg, {"tune.max_trials": 3})
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from fmkeras.config.data import DataConfig
from fmkeras.config.distill import DistillConfig
from fmkeras.config.export import ExportConfig
from fmkeras.config.fields import COMMAND_CONFIGS, command_config, from_dict, load_config_file, section_owner
from fmkeras.config.section import ConfigSection, FieldCheck, field_types, validate
from fmkeras.config.model import ModelConfig
from fmkeras.config.pretrain import PretrainConfig
from fmkeras.config.serve import ServeConfig
from fmkeras.config.text import TextConfig
from fmkeras.config.train import DistributeConfig, FinetuneConfig, TrainConfig
from fmkeras.config.tune import TuneConfig
from fmkeras.errors import ConfigError


@command_config
@dataclasses.dataclass(frozen=True)
class RunConfig(ConfigSection):
    """Everything one `fmkeras train` run needs (also what evaluate/export read back from a run directory).

    `RunConfig(tune=...)` / `(pretrain=...)` / `(distill=...)`, the spelling from before the per-command split,
    builds the command's config (TuneRunConfig, ...), which is a RunConfig too.
    """
    COMMAND = "fmkeras train"

    name: str = "run"
    run_root: str = "runs"
    run_dir: Optional[str] = None
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    export: ExportConfig = ExportConfig()
    distribute: DistributeConfig = DistributeConfig()
    text: TextConfig = TextConfig()

    def __new__(cls, *args, **kwargs):
        if cls is RunConfig and kwargs:
            extra = set(kwargs) - set(field_types(RunConfig))
            if extra:
                return object.__new__(run_config_class(extra, f"RunConfig({', '.join(sorted(extra))}=...)"))
        return object.__new__(cls)

    def check(self, c: FieldCheck):
        """Checks that need two sections."""
        m, t, f = self.model, self.train, self.finetune
        if not self.name or "/" in self.name:
            raise ConfigError(f"`name` must be a non-empty name without '/'. Received: name={self.name!r}")
        if m.lora_rank and f.epochs:
            raise ConfigError(f"`model.lora_rank` replaces staged fine-tuning; set finetune.epochs=0. "
                              f"Received: model.lora_rank={m.lora_rank}, finetune.epochs={f.epochs}")
        if t.schedule == "one_cycle" and t.one_cycle_momentum and f.lr_decay_per_block < 1.0:
            raise ConfigError("`train.schedule=one_cycle` with momentum cycling cannot be combined with "
                              "`finetune.lr_decay_per_block` < 1 yet; set train.one_cycle_momentum=[] or "
                              f"lr_decay_per_block=1. Received: finetune.lr_decay_per_block={f.lr_decay_per_block}")


@command_config
@dataclasses.dataclass(frozen=True)
class TuneRunConfig(RunConfig):
    """`fmkeras tune`: the run every trial trains, and the search."""
    COMMAND = "fmkeras tune"

    tune: TuneConfig = TuneConfig()


@command_config
@dataclasses.dataclass(frozen=True)
class PretrainRunConfig(RunConfig):
    """`fmkeras pretrain`: the source data, backbone and optimizer of a run, and the pretraining method."""
    COMMAND = "fmkeras pretrain"

    pretrain: PretrainConfig = PretrainConfig()

    def check(self, c: FieldCheck):
        super().check(c)
        if self.pretrain.method == "simclr" and self.train.precision not in ("float32", "auto"):
            # The projection head and NT-Xent loss would run in the mixed compute dtype, not float32 (`auto`
            # pretrains in float32).
            raise ConfigError(f"`train.precision` must be float32 (or auto) for pretrain.method=simclr. "
                              f"Received: train.precision={self.train.precision!r}")


@command_config
@dataclasses.dataclass(frozen=True)
class DistillRunConfig(RunConfig):
    """`fmkeras distill`: the student's run and the distillation loss."""
    COMMAND = "fmkeras distill"

    distill: DistillConfig = DistillConfig()


@command_config
@dataclasses.dataclass(frozen=True)
class ServeCommandConfig(ConfigSection):
    """`fmkeras serve`: only the `serve` section (a run's sections in a shared file are left out)."""
    COMMAND = "fmkeras serve"

    serve: ServeConfig = ServeConfig()


def run_config_class(sections, what: str = "config"):
    """The RunConfig (sub)class holding every top-level key in `sections`: RunConfig, TuneRunConfig, ...

    Raises ConfigError when the keys belong to two commands or to no run (e.g. `serve`).
    """
    owners = {section_owner(k) for k in sections} - {None, RunConfig}
    if not owners:
        return RunConfig
    commands = sorted(c.COMMAND for c in owners)
    if len(owners) > 1 or not issubclass(next(iter(owners)), RunConfig):
        raise ConfigError(f"{what} holds settings of {' and '.join(f'`{c}`' for c in commands)}; one run config "
                          f"holds the sections of one command: {', '.join(c.__name__ for c in COMMAND_CONFIGS)}")
    return owners.pop()


def load_config(path: str, cls=None):
    """Loads and validates a config file as `cls`, by default the run config its sections belong to
    (a file with `tune:` loads as a TuneRunConfig, one without any command's section as a RunConfig)."""
    values = load_config_file(path)
    if cls is None:
        cls = run_config_class({k for k in values if k != "serve"}, path)
    return validate(from_dict(cls, values))
