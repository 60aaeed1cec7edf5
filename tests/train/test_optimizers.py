"""fmkeras/train/optimizers.py: gradient accumulation and clipping reach every training loop."""
import dataclasses

import keras
import numpy as np
import pytest

from fmkeras.config import DataConfig, HeadConfig, ModelConfig, TrainConfig
from fmkeras.data import build_datasets
from fmkeras.train import fit, seed_everything
from fmkeras.train.optimizers import build_optimizer
from fmkeras.transfer import build_classifier

# No BatchNorm and no dropout: then k micro-batches of b and one batch of k*b give the same gradient.
PLAIN = ModelConfig(backbone_options={"filters": (4, 8), "batch_norm": False}, head=HeadConfig(pooling="avg"))


def _fit(fashion, tmp_path, batch_size, accumulate_steps, epochs=2):
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, accumulate_steps=accumulate_steps, learning_rate=3e-3,
                      verbose=0, seed=7)
    seed_everything(cfg)
    data = build_datasets(fashion, DataConfig(limit_train=512, validation_split=0.0), batch_size)
    model = build_classifier(PLAIN, data.image_shape, 10)
    result = fit(model, data, cfg, str(tmp_path / f"b{batch_size}"))
    return model, result


def test_accumulating_4_batches_of_16_equals_batches_of_64(fashion, tmp_path):
    big, big_result = _fit(fashion, tmp_path, 64, 1)
    small, small_result = _fit(fashion, tmp_path, 16, 4)
    assert small.optimizer.gradient_accumulation_steps == 4
    assert int(small.optimizer.iterations) == int(big.optimizer.iterations) == 16  # 2 epochs x 8 updates
    # Same loss curve (each micro-batch is evaluated at the weights its big batch sees) and same weights.
    np.testing.assert_allclose(small_result.history["loss"], big_result.history["loss"], rtol=2e-4)
    for a, b in zip(small.get_weights(), big.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)
    # Without accumulation batches of 16 take 4x the updates and end elsewhere.
    other, _ = _fit(fashion, tmp_path / "plain", 16, 1)
    assert not np.allclose(other.get_weights()[0], big.get_weights()[0], atol=1e-3)


def test_staged_finetune_and_distributed_loop_build_the_same_optimizer():
    """Both build theirs with build_optimizer (finetune stage 2) / compile_model (multi-worker loop)."""
    cfg = TrainConfig(accumulate_steps=3, clipnorm=0.5)
    for name in ("adam", "adamw", "sgd"):
        opt = build_optimizer(dataclasses.replace(cfg, optimizer=name), 1e-3)
        assert (opt.gradient_accumulation_steps, opt.clipnorm) == (3, 0.5), name
    from fmkeras.train.lr_multipliers import with_lr_multipliers
    assert with_lr_multipliers(build_optimizer(cfg, 1e-3), {}).gradient_accumulation_steps == 3


@pytest.mark.parametrize("field,value", [("clipnorm", 0.01), ("clipvalue", 0.001)])
def test_gradient_clipping_bounds_the_update(field, value):
    """SGD without momentum moves a weight by lr * clipped gradient: a gradient of 100 becomes the clip."""
    opt = build_optimizer(TrainConfig(optimizer="sgd", momentum=0.0, **{field: value}), 1.0)
    weight = keras.Variable([0.0, 0.0])
    opt.apply_gradients([(keras.ops.convert_to_tensor([100.0, 0.0]), weight)])
    np.testing.assert_allclose(weight.numpy(), [-value, 0.0], rtol=1e-6)
    unclipped = keras.Variable([0.0, 0.0])
    build_optimizer(TrainConfig(optimizer="sgd", momentum=0.0), 1.0).apply_gradients(
        [(keras.ops.convert_to_tensor([100.0, 0.0]), unclipped)])
    assert unclipped.numpy()[0] == -100.0
