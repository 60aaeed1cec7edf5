"""The `export` section: where the SavedModel of a run goes."""
from __future__ import annotations

import dataclasses
from typing import Optional

from fmkeras.config.section import ConfigSection, FieldCheck
from fmkeras.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ExportConfig(ConfigSection):
    """Where the SavedModel goes: `<base_dir>/<model_name>/<next version>/`."""
    PATH = "export"

    enabled: bool = True
    base_dir: str = "saved_models"
    model_name: Optional[str] = None
    # Also export a `serve_pixels_tta` signature averaging over test-time-augmentation views: flip | 2..10.
    tta: Optional[str] = None

    def check(self, c: FieldCheck):
        tta = self.tta
        if tta is not None and not (tta == "flip" or (tta.isdigit() and 2 <= int(tta) <= 10)):
            raise ConfigError(f"`{c.path('tta')}` must be flip or an integer 2..10. Received: {c.path('tta')}={tta!r}")
