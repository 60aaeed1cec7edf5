"""The `distill` section of `fmkeras distill`."""
from __future__ import annotations

import dataclasses

from fmkeras.config.section import ConfigSection, FieldCheck


@dataclasses.dataclass(frozen=True)
class DistillConfig(ConfigSection):
    """`fmkeras distill`: the student learns `alpha` * hard-label CE + (1 - alpha) * T^2 * KL(teacher || student)
    on softmax outputs at `temperature` (fmkeras.transfer.distill)."""
    PATH = "distill"

    temperature: float = 4.0
    alpha: float = 0.1

    def check(self, c: FieldCheck):
        c.range("temperature", 0.0, 100.0, low_open=True)
        c.range("alpha", 0.0, 1.0)
