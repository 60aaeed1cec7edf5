"""fmkeras/config/pretrain.py, distill.py: the pretrain and distill sections (and the train/data fields those
commands lean on) validate by name."""
import pytest

from fmkeras.config import DistillRunConfig, PretrainConfig, PretrainRunConfig, RunConfig, apply_overrides
from fmkeras.errors import ConfigError


@pytest.mark.parametrize("cls,key,value,message", [
    (PretrainRunConfig, "pretrain.method", "byol", "`pretrain.method` must be one of simclr, supervised"),
    (PretrainRunConfig, "pretrain.temperature", 0, "`pretrain.temperature` must be > 0.0"),
    (PretrainRunConfig, "pretrain.output", "bb.h5", "`pretrain.output` must be a .keras file"),
    (PretrainRunConfig, "pretrain.projection_units", "[]", "`pretrain.projection_units` must be positive integers"),
    (PretrainRunConfig, "pretrain.erase_prob", 1.5, "`pretrain.erase_prob` must be >= 0.0 and <= 1.0"),
    (PretrainRunConfig, "pretrain.erase_max_area", 0, "`pretrain.erase_max_area` must be > 0.0"),
    (PretrainRunConfig, "pretrain.noise_stddev", -1, "`pretrain.noise_stddev` must be >= 0.0"),
    (DistillRunConfig, "distill.alpha", 1.5, "`distill.alpha` must be >= 0.0 and <= 1.0"),
    (RunConfig, "train.adversarial", "cw", "`train.adversarial` must be one of none, fgsm, pgd"),
    (RunConfig, "train.adversarial_epsilon", 0, "`train.adversarial_epsilon` must be > 0.0"),
    (RunConfig, "train.loss", "focal", "`train.loss` must be one of crossentropy, symmetric, bootstrap"),
    (RunConfig, "data.labels_per_class", 0, "`data.labels_per_class` must be >= 1"),
    (RunConfig, "data.label_noise", 0.95, "`data.label_noise` must be >= 0.0 and <= 0.9"),
])
def test_bad_values_name_the_field(cls, key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        apply_overrides(cls(), {key: value})


def test_good_values_apply():
    cfg = apply_overrides(PretrainRunConfig(), {"pretrain.projection_units": "256,64", "train.adversarial": "pgd",
                                                "data.labels_per_class": "60"})
    assert cfg.pretrain.projection_units == (256, 64) and cfg.train.adversarial == "pgd"
    assert cfg.data.labels_per_class == 60
    assert apply_overrides(DistillRunConfig(), {"distill.temperature": 2}).distill.temperature == 2.0


def test_simclr_needs_float32_a_check_across_two_sections():
    with pytest.raises(ConfigError, match=r"`train.precision` must be float32 \(or auto\) for pretrain.method=simclr"):
        apply_overrides(PretrainRunConfig(), {"train.precision": "mixed_bfloat16"})
    cfg = apply_overrides(PretrainRunConfig(), {"train.precision": "mixed_bfloat16", "pretrain.method": "supervised"})
    assert cfg.train.precision == "mixed_bfloat16"
    with pytest.raises(ConfigError, match="`pretrain.erase_prob` must be >= 0.0"):
        PretrainConfig(erase_prob=-1).validate()
