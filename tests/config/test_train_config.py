"""fmkeras/config/train.py: one-cycle, clipping, accumulation, precision and pruning fields are validated by name."""
import pytest

from fmkeras.config import RunConfig, apply_overrides
from fmkeras.errors import ConfigError


@pytest.mark.parametrize("overrides,message", [
    ({"train.schedule": "one_cycles"}, "`train.schedule` must be one of constant, cosine, linear, inverse_time, "
                                       "one_cycle. Received: train.schedule='one_cycles'"),
    ({"train.one_cycle_momentum": "[0.95, 1.2]"}, "`train.one_cycle_momentum` must be two numbers in [0, 1)"),
    ({"train.one_cycle_div": 0.5}, "`train.one_cycle_div` must be >= 1.0. Received: train.one_cycle_div=0.5"),
    ({"train.one_cycle_pct_start": 0}, "`train.one_cycle_pct_start` must be > 0.0 and <= 1.0"),
    ({"train.schedule": "one_cycle", "finetune.lr_decay_per_block": 0.5}, "finetune.lr_decay_per_block` < 1"),
    ({"train.clipnorm": -1}, "`train.clipnorm` must be >= 0.0. Received: train.clipnorm=-1.0"),
    ({"train.clipnorm": 1, "train.clipvalue": 1}, "set `train.clipnorm` or `train.clipvalue`, not both"),
    ({"train.accumulate_steps": 0}, "`train.accumulate_steps` must be >= 1 and <= 1024. "
                                    "Received: train.accumulate_steps=0"),
    ({"train.precision": "float16"}, "`train.precision` must be one of float32, mixed_float16, mixed_bfloat16, auto. "
                                     "Received: train.precision='float16'"),
])
def test_bad_values_are_refused_naming_field_value_and_allowed(overrides, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(RunConfig(), overrides)
    assert message in str(err.value)


def test_good_values_pass():
    cfg = apply_overrides(RunConfig(), {"train.schedule": "one_cycle", "train.one_cycle_momentum": "[]",
                                        "train.clipnorm": 1.0, "train.accumulate_steps": 4,
                                        "train.precision": "mixed_bfloat16"})
    assert cfg.train.one_cycle_momentum == () and cfg.train.accumulate_steps == 4


def test_balance_choices_and_refusals():
    from fmkeras.config import TrainConfig
    from fmkeras.train.distributed_loop import check_distributed_settings
    with pytest.raises(ConfigError, match="`data.balance` must be one of none, weights, sample"):
        apply_overrides(RunConfig(), {"data.balance": "oversample"})
    from fmkeras.tasks import task_for_source
    text = apply_overrides(RunConfig(), {"data.balance": "weights", "data.source": "text:debian"})
    with pytest.raises(ConfigError, match="`data.balance` is not supported for text sources"):
        task_for_source(text.data.source).check_config(text)
    with pytest.raises(ConfigError, match="`data.balance=weights` is not supported by the multi-worker loop"):
        check_distributed_settings(TrainConfig(), "weights")
    check_distributed_settings(TrainConfig(), "sample")


def test_export_tta_values():
    assert apply_overrides(RunConfig(), {"export.tta": "flip"}).export.tta == "flip"
    assert apply_overrides(RunConfig(), {"export.tta": 4}).export.tta == "4"
    with pytest.raises(ConfigError, match="`export.tta` must be flip or an integer 2..10. Received: export.tta='11'"):
        apply_overrides(RunConfig(), {"export.tta": 11})


@pytest.mark.parametrize("overrides,message", [
    ({"train.prune_sparsity": 1.0}, "`train.prune_sparsity` must be >= 0.0 and <= 0.99. Received: train.prune_sparsity=1.0"),
    ({"train.prune_schedule": "cubic"}, "`train.prune_schedule` must be one of polynomial, constant"),
    ({"train.prune_begin": 0.5, "train.prune_end": 0.4}, "`train.prune_end` must be > 0.5 and <= 1.0"),
])
def test_pruning_fields_are_validated(overrides, message):
    with pytest.raises(ConfigError) as err:
        apply_overrides(RunConfig(), overrides)
    assert message in str(err.value)


def test_multiworker_loop_refuses_pruning():
    from fmkeras.config import TrainConfig
    from fmkeras.train.distributed_loop import check_distributed_settings
    with pytest.raises(ConfigError, match="`train.prune_sparsity` is not supported by the multi-worker loop"):
        check_distributed_settings(TrainConfig(prune_sparsity=0.5))


def test_a_section_validated_alone_names_the_field_by_its_full_path():
    from fmkeras.config import FinetuneConfig, TrainConfig
    with pytest.raises(ConfigError) as err:
        TrainConfig(schedule="foo").validate()
    assert str(err.value) == ("`train.schedule` must be one of constant, cosine, linear, inverse_time, one_cycle. "
                              "Received: train.schedule='foo'")
    with pytest.raises(ConfigError, match=r"set `finetune.unfreeze_layers` or `finetune.unfreeze_blocks`, not both"):
        FinetuneConfig(unfreeze_layers=2, unfreeze_blocks=1).validate()
    assert TrainConfig(schedule="cosine").validate().schedule == "cosine"
