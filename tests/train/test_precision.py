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
