"""fmkeras/train/batch_norm_stats.py: precise BatchNorm statistics after a fit."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from fmkeras.backbones.cnn import FusedBatchNormalization
from fmkeras.train.batch_norm_stats import recompute_batch_norm_statistics, trainable_batch_norm_layers


def _net():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, kernel_initializer="identity", use_bias=False),
                              keras.layers.BatchNormalization(name="inner_bn")], name="backbone")
    frozen = keras.layers.BatchNormalization(name="frozen_bn")
    frozen.trainable = False
    inputs = keras.Input((3,))
    x = frozen(inner(inputs))
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_moving_statistics_become_the_average_of_the_batches_and_frozen_layers_keep_theirs():
    model = _net()
    inner_bn, frozen_bn = model.get_layer("backbone").get_layer("inner_bn"), model.get_layer("frozen_bn")
    assert trainable_batch_norm_layers(model) == [inner_bn]  # nested found, frozen left out
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=5.0 * i, scale=1.0 + i, size=(16, 3)).astype("float32") for i in range(4)]
    labels = np.zeros((16,), "int64")
    ds = tf.data.Dataset.from_tensor_slices(([*batches, batches[0]], [labels] * 5))  # 5 batches; 4 are used
    weights_before = [w.copy() for w in model.get_weights()]
    frozen_before = [frozen_bn.moving_mean.numpy().copy(), frozen_bn.moving_variance.numpy().copy()]
    assert recompute_batch_norm_statistics(model, ds, num_batches=4) == 4
    np.testing.assert_allclose(inner_bn.moving_mean.numpy(), np.mean([b.mean(0) for b in batches], 0), rtol=1e-5)
    np.testing.assert_allclose(inner_bn.moving_variance.numpy(), np.mean([b.var(0) for b in batches], 0), rtol=1e-4)
    assert inner_bn.momentum == 0.99  # restored
    np.testing.assert_allclose(frozen_bn.moving_mean.numpy(), frozen_before[0])
    np.testing.assert_allclose(frozen_bn.moving_variance.numpy(), frozen_before[1])
    changed = [not np.allclose(b, a) for b, a in zip(weights_before, model.get_weights())]
    assert sum(changed) == 2  # only inner_bn's moving mean and variance: no trainable weight moved


def test_fused_layer_and_nothing_to_do():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, FusedBatchNormalization(name="bn")(inputs))
    x = np.random.default_rng(1).normal(3.0, 2.0, (2, 8, 4, 4, 2)).astype("float32")
    assert recompute_batch_norm_statistics(model, tf.data.Dataset.from_tensor_slices(x), num_batches=10) == 2
    flat = x.reshape(2, -1, 2)
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), flat.mean(1).mean(0), rtol=1e-5)
    # the fused kernel's variance is the unbiased one
    np.testing.assert_allclose(model.get_layer("bn").moving_variance.numpy(), flat.var(1, ddof=1).mean(0), rtol=1e-4)
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert recompute_batch_norm_statistics(plain, tf.data.Dataset.from_tensor_slices(np.zeros((1, 4, 3))), 5) == 0
    assert recompute_batch_norm_statistics(model, tf.data.Dataset.from_tensor_slices(x), 0) == 0


@pytest.mark.parametrize("value", [-1, -50])
def test_the_setting_is_validated(value):
    from fmkeras.config import TrainConfig, validate
    from fmkeras.errors import ConfigError
    with pytest.raises(ConfigError, match="batch_norm_batches"):
        validate(TrainConfig(batch_norm_batches=value))


@pytest.mark.slow
def test_one_epoch_of_the_default_recipe_is_usable(tmp_path, fashion):
    """A one-epoch smoke run (`make train EPOCHS=1`) of cnn_fashion_fast. With the moving statistics taken during
    a one-cycle epoch under Adam (cnn_fashion's optimizer) the test accuracy was ~0.3 (train ~0.8); the recipes'
    batch_norm_batches re-estimates them from the final weights. cnn_fashion_fast's SGD lags less (0.74 without)."""
    from fmkeras.config import apply_overrides
    from fmkeras.experiment import run_training
    from fmkeras.recipes import load_recipe
    recipe, default = load_recipe("cnn_fashion_fast"), load_recipe("cnn_fashion")
    assert recipe.train.batch_norm_batches == 10  # inherited from cnn_fashion

    def one_epoch(batches, **train):
        cfg = apply_overrides(recipe, {"train.epochs": 1, "data.limit_train": 12800, "data.limit_test": 2000,
                                       "train.batch_norm_batches": batches, "export.enabled": False,
                                       "export.tta": None, "train.verbose": 0, "train.precision": "float32",
                                       "run_root": str(tmp_path / f"bn{batches}{train.get('train.optimizer', '')}"),
                                       **train})
        return run_training(cfg)["test"]["accuracy"]

    assert one_epoch(10) >= 0.75  # the recipe as it is: 50 one-cycle steps on 12,800 images
    adam = {"train.optimizer": default.train.optimizer, "train.learning_rate": default.train.learning_rate,
            "train.weight_decay": default.train.weight_decay}
    accuracy = {batches: one_epoch(batches, **adam) for batches in (0, 10)}
    assert accuracy[10] >= 0.75, accuracy
    assert accuracy[10] >= accuracy[0] + 0.2, accuracy  # the lagging statistics, measured here


def test_the_multi_worker_loop_says_it_keeps_the_moving_statistics(caplog):
    import logging
    from fmkeras.config import TrainConfig
    from fmkeras.train.distributed_loop import check_distributed_settings
    with caplog.at_level(logging.WARNING, logger="fmkeras"):
        check_distributed_settings(TrainConfig(batch_norm_batches=10))  # the recipes' value: not refused
    assert "train.batch_norm_batches=10 is not applied by the multi-worker loop" in caplog.text
