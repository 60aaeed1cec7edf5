"""The `model` section: the backbone (by registry name), its weights and options, and the new head."""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from fmkeras.config.section import ConfigSection, FieldCheck, positive_ints
from fmkeras.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class HeadConfig(ConfigSection):
    """The new classification head put on a backbone.

    binary: one sigmoid unit instead of a softmax (two classes only); the model still
    outputs two probabilities [1 - p, p], so evaluation and export treat it like any classifier.
    multi_label: one independent sigmoid per class (several classes per example; the multi-label task,
    `multilabel:` sources, sets it) instead of a softmax over them.
    """
    PATH = "model.head"

    pooling: Literal["avg", "max", "flatten"] = "avg"
    dense_units: tuple = ()
    dropout: float = 0.0
    activation: str = "relu"
    binary: bool = False
    multi_label: bool = False

    def check(self, c: FieldCheck):
        c.range("dropout", 0.0, 0.95)
        if self.binary and self.multi_label:
            raise ConfigError(f"set `{c.path('binary')}` or `{c.path('multi_label')}`, not both. "
                              f"Received: {c.path('binary')}=True, {c.path('multi_label')}=True")
        if not positive_ints(self.dense_units):
            raise ConfigError(f"`{c.path('dense_units')}` must be positive integers. "
                              f"Received: {c.path('dense_units')}={self.dense_units!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig(ConfigSection):
    """Backbone (by registry name, checked when it is built), its weights and options, and the head."""
    PATH = "model"

    backbone: str = "cnn"
    weights: Optional[str] = None
    input_size: Optional[tuple] = None
    backbone_options: dict = dataclasses.field(default_factory=dict)
    head: HeadConfig = HeadConfig()
    lora_rank: int = 0  # > 0: LoRA on the backbone's Dense/EinsumDense/Embedding layers, the rest frozen
    # > 1: a deep ensemble, text sources only: this many classifiers trained one after another, each with its
    # own seed (train.seed + i), into one model that averages their probabilities (fmkeras.transfer.ensemble).
    ensemble: int = 1

    def check(self, c: FieldCheck):
        c.size("input_size")
        c.range("lora_rank", 0)
        c.range("ensemble", 1, 16)
