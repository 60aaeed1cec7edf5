"""Dataclass configs, one module per section, and one config per command.

One source of truth: recipes (YAML/JSON files), config files given with --config and flag overrides
(`train.epochs=3`) all become a command's config through `from_dict` and `apply_overrides`; each section
validates itself and names the field, the bad value and what is allowed.

- fields.py: the machinery (typed from_dict/to_dict, `--set` parsing, YAML, sections of other commands)
- section.py: ConfigSection, whose validate() checks `Literal` choices, subsections and the section's rules
- data.py, model.py, train.py, text.py, export.py: the sections of a training run
- tune.py, pretrain.py, distill.py, serve.py: the sections of the other commands
- run.py: RunConfig (`fmkeras train`) and TuneRunConfig, PretrainRunConfig, DistillRunConfig, ServeCommandConfig

Example:
    cfg = load_config("fmkeras/recipes/cnn_fashion.yaml")
    cfg = apply_overrides(cfg, {"train.epochs": 3})
"""
from fmkeras.config.data import (MULTILABEL_SOURCE_PREFIX, SOURCE_PREFIXES, TEXT_SOURCE_PREFIX, AugmentConfig,
                                 DataConfig)
from fmkeras.config.distill import DistillConfig
from fmkeras.config.export import ExportConfig
from fmkeras.config.fields import (COMMAND_CONFIGS, apply_overrides, deep_merge, from_dict, load_config_file,
                                   parse_override, to_dict, yaml_load)
from fmkeras.config.model import HeadConfig, ModelConfig
from fmkeras.config.pretrain import PretrainConfig
from fmkeras.config.run import (DistillRunConfig, PretrainRunConfig, RunConfig, ServeCommandConfig, TuneRunConfig,
                                load_config, run_config_class)
from fmkeras.config.section import ConfigSection, check_range, validate
from fmkeras.config.serve import ServeConfig, validate_serve
from fmkeras.config.text import TextConfig
from fmkeras.config.train import DistributeConfig, FinetuneConfig, TrainConfig
from fmkeras.config.tune import TuneConfig

__all__ = [
    "AugmentConfig", "COMMAND_CONFIGS", "ConfigSection", "DataConfig", "DistillConfig", "DistillRunConfig",
    "DistributeConfig", "ExportConfig", "FinetuneConfig", "HeadConfig", "MULTILABEL_SOURCE_PREFIX", "ModelConfig",
    "PretrainConfig", "PretrainRunConfig", "RunConfig", "SOURCE_PREFIXES", "ServeCommandConfig", "ServeConfig",
    "TEXT_SOURCE_PREFIX",
    "TextConfig", "TrainConfig", "TuneConfig", "TuneRunConfig", "apply_overrides", "check_range", "deep_merge",
    "from_dict",
    "load_config", "load_config_file", "parse_override", "run_config_class", "to_dict", "validate",
    "validate_serve", "yaml_load",
]
