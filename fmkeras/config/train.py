"""The `train`, `finetune` and `distribute` sections: optimizer, schedule, staged transfer, tf.distribute."""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from fmkeras.config.section import ConfigSection, FieldCheck
from fmkeras.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TrainConfig(ConfigSection):
    """Optimizer, schedule, regularization and callbacks of one training run."""
    PATH = "train"

    epochs: int = 10
    batch_size: int = 128
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    l2: float = 0.0
    schedule: Literal["constant", "cosine", "linear", "inverse_time", "one_cycle"] = "constant"
    warmup_steps: int = 0
    decay_rate: float = 0.5
    decay_steps: int = 1000
    label_smoothing: float = 0.0
    # Polyak averaging: > 0 keeps an exponential moving average of the weights (Keras' optimizer
    # `use_ema`, updated every step with this momentum, e.g. 0.99); validation, the best checkpoint
    # and the final model use the averaged weights (keras.callbacks.SwapEMAWeights). 0 = off.
    ema_momentum: float = 0.0
    early_stopping_patience: int = 0
    steps_per_epoch: Optional[int] = None
    seed: int = 1337
    deterministic: bool = False
    verbose: int = 2
    # Adversarial training (fmkeras.transfer.adversarial): each batch is fitted with its FGSM/PGD copy at
    # `adversarial_epsilon` (a fraction of the [0, 255] pixel range); PGD takes `adversarial_steps` steps.
    adversarial: Literal["none", "fgsm", "pgd"] = "none"
    adversarial_epsilon: float = 0.1
    adversarial_steps: int = 5
    # crossentropy, or a noise-robust loss for noisy labels (fmkeras.train.losses): symmetric (SCE), bootstrap;
    # binary_crossentropy: one sigmoid per class (multi-label sources; their task sets it).
    loss: Literal["crossentropy", "symmetric", "bootstrap", "binary_crossentropy"] = "crossentropy"
    # Resume: a checkpoint every N steps and at each epoch end (0 = off, the default until the
    # step-indexed stream matches the epoch pipeline's accuracy); rerunning with the same run_dir
    # continues at that step. The newest `keep_checkpoints` (>= 2) files are kept.
    backup_every_steps: int = 0
    keep_checkpoints: int = 2
    # schedule=one_cycle (fmkeras.train.schedules.OneCycle): LR from learning_rate/one_cycle_div up to
    # learning_rate over warmup_steps (0: one_cycle_pct_start of the steps), then down to
    # learning_rate/(div*final_div); the momentum (SGD momentum, Adam beta_1) goes the other way between
    # one_cycle_momentum = (at the ends, at the peak); empty = no momentum cycling.
    one_cycle_div: float = 25.0
    one_cycle_final_div: float = 1e4
    one_cycle_pct_start: float = 0.25
    one_cycle_momentum: tuple = (0.95, 0.85)
    # Gradient clipping (Keras optimizer clipnorm/clipvalue; 0 = off), gradient accumulation (the optimizer's
    # gradient_accumulation_steps: weights move every N batches with the averaged gradient) and the Keras
    # mixed-precision policy (float32 | mixed_float16 | mixed_bfloat16; loss and softmax stay float32);
    # auto = mixed_bfloat16 on a CPU with native bfloat16 (AMX / AVX512-BF16), else float32
    # (fmkeras.train.trainer.resolve_precision; config.json records the policy the run used).
    clipnorm: float = 0.0
    clipvalue: float = 0.0
    accumulate_steps: int = 1
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16", "auto"] = "float32"
    # Gradual magnitude pruning of Conv/Dense kernels (fmkeras.train.pruning): 0 = off, else the final sparsity,
    # reached along prune_schedule (polynomial | constant) between prune_begin and prune_end (fractions of the
    # training steps), masks recomputed every prune_frequency steps.
    prune_sparsity: float = 0.0
    prune_schedule: Literal["polynomial", "constant"] = "polynomial"
    prune_begin: float = 0.0
    prune_end: float = 0.75
    prune_frequency: int = 100
    # Precise BatchNorm statistics (fmkeras.train.batch_norm_stats): after the fit, every trainable BatchNorm
    # layer's moving mean/variance become the average over this many training batches seen by the final
    # weights (0 = keep the moving averages taken during training, which lag the weights in short runs).
    batch_norm_batches: int = 0

    def check(self, c: FieldCheck):
        c.range("epochs", 1)
        c.range("batch_size", 1)
        c.range("learning_rate", 0.0, 10.0, low_open=True)
        c.range("momentum", 0.0, 1.0)
        c.range("weight_decay", 0.0)
        c.range("l2", 0.0)
        c.range("label_smoothing", 0.0, 0.5)
        c.range("ema_momentum", 0.0, 0.9999)
        if self.ema_momentum and self.backup_every_steps:
            # A step checkpoint taken at an epoch end would hold the swapped-in averaged weights as the
            # training weights; resuming from it would silently continue from the average.
            raise ConfigError(f"`{c.path('ema_momentum')}` cannot be combined with resumable training yet. "
                              f"Received: {c.path('ema_momentum')}={self.ema_momentum!r} and "
                              f"{c.path('backup_every_steps')}={self.backup_every_steps!r}")
        for name in ("warmup_steps", "backup_every_steps", "batch_norm_batches"):
            c.range(name, 0)
        for name in ("decay_steps", "steps_per_epoch", "adversarial_steps", "prune_frequency"):
            c.range(name, 1)
        c.range("keep_checkpoints", 2)
        c.range("adversarial_epsilon", 0.0, 1.0, low_open=True)
        self._check_fast_training(c)
        self._check_pruning(c)
        if self.precision == "mixed_float16" and self.adversarial != "none":
            # Adversarial training's own train step does not scale the loss, which float16 gradients need.
            raise ConfigError(f"`{c.path('precision')}=mixed_float16` cannot be combined with adversarial training; "
                              f"use mixed_bfloat16. Received: {c.path('adversarial')}={self.adversarial!r}")

    def _check_fast_training(self, c: FieldCheck):
        """one_cycle, clipping and accumulation settings (fmkeras.train.schedules/optimizers)."""
        c.range("one_cycle_div", 1.0)
        c.range("one_cycle_final_div", 1.0)
        c.range("one_cycle_pct_start", 0.0, 1.0, low_open=True)
        momentum = self.one_cycle_momentum
        if momentum and (len(momentum) != 2 or not all(
                isinstance(v, (int, float)) and 0.0 <= v < 1.0 for v in momentum)):
            raise ConfigError(f"`{c.path('one_cycle_momentum')}` must be two numbers in [0, 1) (at the ends, at the "
                              f"peak LR) or empty. Received: {c.path('one_cycle_momentum')}={momentum!r}")
        c.range("clipnorm", 0.0)
        c.range("clipvalue", 0.0)
        if self.clipnorm and self.clipvalue:
            raise ConfigError(f"set `{c.path('clipnorm')}` or `{c.path('clipvalue')}`, not both. Received: "
                              f"{c.path('clipnorm')}={self.clipnorm}, {c.path('clipvalue')}={self.clipvalue}")
        c.range("accumulate_steps", 1, 1024)

    def _check_pruning(self, c: FieldCheck):
        c.range("prune_sparsity", 0.0, 0.99)
        c.range("prune_begin", 0.0, 1.0)
        c.range("prune_end", self.prune_begin, 1.0, low_open=True)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(ConfigSection):
    """Staged transfer: stage 1 trains the head for `train.epochs` (backbone frozen if
    `freeze_backbone`); stage 2 runs `epochs` more with the top `unfreeze_layers` layers or
    `unfreeze_blocks` blocks trainable (both 0 = the whole backbone) at `learning_rate`,
    each lower block's LR multiplied by `lr_decay_per_block` (discriminative LRs; 1 = off).
    BatchNorm layers stay in inference mode while `freeze_batchnorm`."""
    PATH = "finetune"

    freeze_backbone: bool = False
    epochs: int = 0
    unfreeze_layers: int = 0
    unfreeze_blocks: int = 0
    learning_rate: float = 1e-5
    freeze_batchnorm: bool = True
    lr_decay_per_block: float = 1.0

    def check(self, c: FieldCheck):
        for name in ("epochs", "unfreeze_layers", "unfreeze_blocks"):
            c.range(name, 0)
        c.range("learning_rate", 0.0, 10.0, low_open=True)
        c.range("lr_decay_per_block", 0.0, 1.0, low_open=True)
        if self.unfreeze_layers and self.unfreeze_blocks:
            raise ConfigError(f"set `{c.path('unfreeze_layers')}` or `{c.path('unfreeze_blocks')}`, not both. "
                              f"Received: {c.path('unfreeze_layers')}={self.unfreeze_layers}, "
                              f"{c.path('unfreeze_blocks')}={self.unfreeze_blocks}")


@dataclasses.dataclass(frozen=True)
class DistributeConfig(ConfigSection):
    """tf.distribute: `strategy` auto|default|mirrored|multiworker|tpu (auto: tpu if `tpu` or $TPU_NAME is
    set, multiworker if TF_CONFIG names several workers, mirrored if > 1 GPU, else default).
    `train.batch_size` is per replica; the global batch is batch_size x replicas. `scale_learning_rate`
    none|linear|sqrt multiplies train/finetune learning rates by replicas (or its square root).
    `shard_policy` auto|data|file|off is tf.data's AutoShardPolicy across workers. `devices` pins the
    mirrored replicas (e.g. CPU:0,CPU:1). `backup_every_steps`: the multi-worker loop's fault-tolerance
    checkpoint interval."""
    PATH = "distribute"

    strategy: Literal["auto", "default", "mirrored", "multiworker", "tpu"] = "auto"
    tpu: str = ""
    scale_learning_rate: Literal["none", "linear", "sqrt"] = "none"
    shard_policy: Literal["auto", "data", "file", "off"] = "auto"
    devices: tuple = ()
    backup_every_steps: int = 50

    def check(self, c: FieldCheck):
        c.range("backup_every_steps", 1)
