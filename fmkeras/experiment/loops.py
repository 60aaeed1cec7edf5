"""The training loops, one per kind of strategy, each honouring the same config or refusing a setting by name.

- `keras_fit`: Keras `fit` in stages (fmkeras.transfer.finetune.fit_stages) under the strategy's scope:
  no strategy, MirroredStrategy, TPUStrategy. Honours every training setting.
- `multi_worker`: fmkeras.train.distributed_loop under MultiWorkerMirroredStrategy (Keras 3 `fit` does not
  run there, keras-team/keras#20585). Honours `finetune.freeze_backbone`; refuses the settings it cannot
  honour (see `check_multi_worker_settings`) before anything is built or written.
"""
from __future__ import annotations

import dataclasses

from fmkeras.config import RunConfig
from fmkeras.errors import ConfigError
from fmkeras.train.distributed_loop import check_distributed_settings, fit_distributed
from fmkeras.train.strategy import needs_custom_loop, strategy_name
from fmkeras.transfer import fit_stages, freeze_backbone


def check_multi_worker_settings(cfg: RunConfig):
    """ConfigError naming the first setting the multi-worker loop would not honour."""
    check_distributed_settings(cfg.train, cfg.data.balance)
    defaults = RunConfig()
    refused = {"finetune.epochs": cfg.finetune.epochs, "finetune.lr_decay_per_block": cfg.finetune.lr_decay_per_block,
               "train.adversarial": cfg.train.adversarial, "train.loss": cfg.train.loss}
    for name, value in refused.items():
        section, field = name.split(".")
        if value != getattr(getattr(defaults, section), field):
            raise ConfigError(f"`{name}` is not supported by the multi-worker loop (it trains one stage with "
                              f"cross-entropy); use distribute.strategy=mirrored or default for it. "
                              f"Received: {name}={value!r}")


@dataclasses.dataclass
class Loop:
    """A training loop bound to its strategy; call it as loop(model, data, cfg, run_dir)."""
    strategy: object
    backup_dir: str = None  # multi-worker: the chief's backup every task restores from
    backup_every_steps: int = 50

    @property
    def name(self) -> str:
        return "multi_worker" if needs_custom_loop(self.strategy) else "keras_fit"

    @property
    def strategy_name(self) -> str:
        return strategy_name(self.strategy)

    def check(self, cfg: RunConfig):
        """Refuses, up front, the settings this loop cannot honour."""
        if self.name == "multi_worker":
            check_multi_worker_settings(cfg)

    def __call__(self, model, data, cfg: RunConfig, run_dir: str, total_epochs: int = None, **kwargs):
        if self.name == "keras_fit":
            with self.strategy.scope():
                return fit_stages(model, data, cfg, run_dir, total_epochs=total_epochs, **kwargs)
        if cfg.finetune.freeze_backbone:
            freeze_backbone(model)
        return fit_distributed(model, data, cfg.train, run_dir, self.strategy, backup_dir=self.backup_dir,
                               backup_every_steps=self.backup_every_steps, epochs=total_epochs)
