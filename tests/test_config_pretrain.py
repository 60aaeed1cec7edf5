"""config.py: the pretrain, distill, adversarial, loss and label fields validate by name."""
import pytest

from fmkeras.config import RunConfig, apply_overrides
from fmkeras.errors import ConfigError


@pytest.mark.parametrize("key,value,message", [
    ("pretrain.method", "byol", "`pretrain.method` must be one of simclr, supervised"),
    ("pretrain.temperature", 0, "`pretrain.temperature` must be > 0.0"),
    ("pretrain.output", "bb.h5", "`pretrain.output` must be a .keras file"),
    ("pretrain.projection_units", "[]", "`pretrain.projection_units` must be positive integers"),
    ("pretrain.erase_prob", 1.5, "`pretrain.erase_prob` must be >= 0.0 and <= 1.0"),
    ("pretrain.erase_max_area", 0, "`pretrain.erase_max_area` must be > 0.0"),
    ("pretrain.noise_stddev", -1, "`pretrain.noise_stddev` must be >= 0.0"),
    ("distill.alpha", 1.5, "`distill.alpha` must be >= 0.0 and <= 1.0"),
    ("train.adversarial", "cw", "`train.adversarial` must be one of none, fgsm, pgd"),
    ("train.adversarial_epsilon", 0, "`train.adversarial_epsilon` must be > 0.0"),
    ("train.loss", "focal", "`train.loss` must be one of crossentropy, symmetric, bootstrap"),
    ("data.labels_per_class", 0, "`data.labels_per_class` must be >= 1"),
    ("data.label_noise", 0.95, "`data.label_noise` must be >= 0.0 and <= 0.9"),
])
def test_bad_values_name_the_field(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        apply_overrides(RunConfig(), {key: value})


def test_good_values_apply():
    cfg = apply_overrides(RunConfig(), {"pretrain.projection_units": "256,64", "train.adversarial": "pgd",
                                        "data.labels_per_class": "60", "distill.temperature": 2})
    assert cfg.pretrain.projection_units == (256, 64) and cfg.train.adversarial == "pgd"
    assert cfg.data.labels_per_class == 60 and cfg.distill.temperature == 2.0
