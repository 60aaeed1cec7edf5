"""fmkeras/train/trainer.py: train.precision sets Keras' mixed-precision policy; loss and softmax stay float32."""
import keras
import numpy as np
import pytest

from fmkeras.config import RunConfig, apply_overrides
from fmkeras.data import build_datasets, load_source
from fmkeras.errors import ConfigError
from fmkeras.train import fit, seed_everything
from fmkeras.transfer import build_classifier
from tests.conftest import tiny_config


@pytest.fixture(autouse=True)
def float32_afterwards():
    yield
    keras.config.set_dtype_policy("float32")


@pytest.mark.slow
@pytest.mark.parametrize("policy,compute", [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")])
def test_mixed_precision_trains_with_finite_losses_on_cpu(tmp_path, policy, compute):
    cfg = tiny_config(tmp_path, epochs=2, precision=policy, learning_rate=3e-3)
    seed_everything(cfg.train)
    data = build_datasets(load_source(cfg.data), cfg.data, cfg.train.batch_size)
    model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    conv = model.get_layer("backbone").get_layer("block1_conv1")
    assert conv.compute_dtype == compute and conv.kernel.dtype == "float32"  # float32 master weights
    assert model.get_layer("predictions").compute_dtype == "float32" and model.output.dtype == "float32"
    result = fit(model, data, cfg.train, str(tmp_path / "run"))
    assert np.all(np.isfinite(result.history["loss"])) and np.all(np.isfinite(result.history["val_loss"]))
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert (type(model.optimizer).__name__ == "LossScaleOptimizer") == (policy == "mixed_float16")


def test_float32_resets_the_policy_for_the_next_run(tmp_path):
    seed_everything(tiny_config(tmp_path, precision="mixed_bfloat16").train)
    seed_everything(tiny_config(tmp_path).train)
    assert keras.config.dtype_policy().name == "float32"


def test_settings_a_loop_cannot_honour_are_refused():
    with pytest.raises(ConfigError, match="cannot be combined with adversarial"):
        apply_overrides(RunConfig(), {"train.precision": "mixed_float16", "train.adversarial": "fgsm"})


def test_the_text_task_refuses_mixed_precision():
    from fmkeras.tasks import task_for_source
    cfg = apply_overrides(RunConfig(), {"train.precision": "mixed_bfloat16", "data.source": "text:debian"})
    with pytest.raises(ConfigError, match="must be float32 for text sources"):
        task_for_source(cfg.data.source).check_config(cfg)


def test_multiworker_loop_refuses_float16():
    from fmkeras.config import TrainConfig
    from fmkeras.train.distributed_loop import check_distributed_settings
    with pytest.raises(ConfigError, match="mixed_float16` is not supported by the multi-worker loop"):
        check_distributed_settings(TrainConfig(precision="mixed_float16"))
    check_distributed_settings(TrainConfig(precision="mixed_bfloat16"))


@pytest.mark.parametrize("flags,isa_cap,expected", [
    ("fpu avx2 avx512f amx_bf16 amx_tile", None, "mixed_bfloat16"),   # AMX (Sapphire Rapids and later)
    ("fpu avx2 avx512f avx512_bf16", None, "mixed_bfloat16"),         # AVX512-BF16 (Cooper Lake, Zen 4)
    ("fpu avx2 fma", None, "float32"),                                 # AVX2 only: bfloat16 would be emulated
    ("fpu avx2 avx512f amx_bf16", "AVX2", "float32"),                  # oneDNN capped below bfloat16
    ("fpu avx2 avx512f amx_bf16", "avx512_core_amx", "mixed_bfloat16"),
])
def test_auto_precision_is_bfloat16_only_where_the_cpu_computes_it(tmp_path, monkeypatch, flags, isa_cap, expected):
    from fmkeras.train import trainer
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    if isa_cap:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa_cap)
    else:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    real = trainer.cpu_has_native_bfloat16
    monkeypatch.setattr(trainer, "cpu_has_native_bfloat16", lambda: real(str(cpuinfo)))
    assert trainer.resolve_precision("auto") == expected
    assert trainer.resolve_precision("float32") == "float32"  # explicit policies are kept as given
    assert not real(str(tmp_path / "no_such_file"))  # no /proc/cpuinfo (macOS): float32
    monkeypatch.setattr(trainer.tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"])
    assert trainer.resolve_precision("auto") == "float32"  # a GPU trains: the CPU's flags do not apply


def test_auto_precision_run_records_the_policy_it_used(tmp_path, monkeypatch):
    import json
    import os

    from fmkeras.experiment import Experiment
    from fmkeras.train import trainer
    monkeypatch.setattr(trainer, "cpu_has_native_bfloat16", lambda: True)
    cfg = tiny_config(tmp_path, epochs=1, precision="auto")
    report = Experiment(cfg).run()
    with open(os.path.join(report["run_dir"], "config.json")) as fh:
        assert json.load(fh)["train"]["precision"] == "mixed_bfloat16"
    # the caller's policy is back: a model built after the run (a notebook's next cell, the time-to-accuracy
    # benchmark's reference net) is float32 again, not the run's mixed_bfloat16
    assert keras.config.dtype_policy().name == "float32"


def test_an_entry_point_restores_the_callers_policy_when_it_fails(tmp_path):
    from fmkeras.train import restores_dtype_policy

    @restores_dtype_policy
    def failing_run(cfg):
        seed_everything(cfg.train)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError("data went missing")

    with pytest.raises(RuntimeError, match="data went missing"):
        failing_run(tiny_config(tmp_path, precision="mixed_bfloat16"))
    assert keras.config.dtype_policy().name == "float32"
