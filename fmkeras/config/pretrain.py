"""The `pretrain` section of `fmkeras pretrain`: SimCLR or supervised pretraining of a backbone."""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from fmkeras.config.section import ConfigSection, FieldCheck, positive_ints
from fmkeras.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class PretrainConfig(ConfigSection):
    """`fmkeras pretrain`: make a backbone from a source dataset (fmkeras.pretrain).

    method: `simclr` (contrastive, labels ignored) or `supervised` (a classifier on the source's labels).
    SimCLR views: a random resized crop keeping `crop_min_scale`..1 of the area, then random horizontal
    flips, `brightness` and `contrast` jitter; NT-Xent loss at `temperature` on a projection head of
    `projection_units` (hidden, output). output: the backbone `.keras` file (default <run_dir>/backbone.keras).
    projection_batch_norm: BatchNormalization after every hidden projection Dense (as in SimCLR).
    erase_prob: chance that each view gets a random rectangle (up to `erase_max_area` of the image) filled with
    uniform noise (random erasing); noise_stddev: gaussian pixel noise (in [0, 255] units) added to each view.
    """
    PATH = "pretrain"

    method: Literal["simclr", "supervised"] = "simclr"
    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 2e-3
    temperature: float = 0.2
    projection_units: tuple = (256, 128)
    crop_min_scale: float = 0.3
    horizontal_flip: bool = True
    brightness: float = 0.3
    contrast: float = 0.4
    output: Optional[str] = None
    projection_batch_norm: bool = True
    erase_prob: float = 0.0
    erase_max_area: float = 0.25
    noise_stddev: float = 0.0

    def check(self, c: FieldCheck):
        c.range("epochs", 1)
        c.range("batch_size", 2)
        for name in ("learning_rate", "temperature"):
            c.range(name, 0.0, 10.0, low_open=True)
        c.range("crop_min_scale", 0.0, 1.0, low_open=True)
        c.range("brightness", 0.0, 0.9)
        c.range("contrast", 0.0, 0.9)
        c.range("erase_prob", 0.0, 1.0)
        c.range("erase_max_area", 0.0, 1.0, low_open=True)
        c.range("noise_stddev", 0.0, 255.0)
        if not self.projection_units or not positive_ints(self.projection_units):
            raise ConfigError(f"`{c.path('projection_units')}` must be positive integers (hidden..., output). "
                              f"Received: {c.path('projection_units')}={self.projection_units!r}")
        if self.output is not None and not self.output.endswith(".keras"):
            raise ConfigError(f"`{c.path('output')}` must be a .keras file. Received: "
                              f"{c.path('output')}={self.output!r}")
