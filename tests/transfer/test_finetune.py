"""fmkeras/transfer/finetune.py: frozen stages, unfreezing the top, per-block LRs."""
import csv
import dataclasses
import os

import keras
import numpy as np
import pytest

from fmkeras.config import FinetuneConfig
from fmkeras.data import build_datasets, load_source
from fmkeras.errors import ConfigError
from fmkeras.experiment import run_training
from fmkeras.train import seed_everything
from fmkeras.train.lr_multipliers import MultiplierAdam, with_lr_multipliers
from fmkeras.transfer import BACKBONE_LAYER, build_classifier, fit_stages, freeze_backbone, unfreeze_top
from fmkeras.transfer.finetune import block_lr_multipliers
from tests.conftest import tiny_config


def _setup(tmp_path, finetune: FinetuneConfig, **train):
    cfg = dataclasses.replace(tiny_config(tmp_path, **train), finetune=finetune)
    seed_everything(cfg.train)
    data = build_datasets(load_source(cfg.data), cfg.data, cfg.train.batch_size)
    return cfg, data, build_classifier(cfg.model, data.image_shape, len(data.class_names))


def _weights(layer):
    return {v.path: np.array(v) for v in layer.weights}


def _bn_stats(backbone):
    return {v.path: np.array(v) for v in backbone.weights if "moving" in v.path}


def test_stage_one_keeps_frozen_backbone_and_bn_statistics(tmp_path):
    cfg, data, model = _setup(tmp_path, FinetuneConfig(freeze_backbone=True), learning_rate=1e-2)
    backbone, head = model.get_layer(BACKBONE_LAYER), model.get_layer("predictions")
    before, head_before = _weights(backbone), _weights(head)
    assert _bn_stats(backbone), "the tiny CNN must have BatchNorm moving statistics"
    result = fit_stages(model, data, cfg, str(tmp_path / "run"))
    for path, value in _weights(backbone).items():
        np.testing.assert_array_equal(value, before[path], err_msg=path)
    assert any(not np.array_equal(v, head_before[p]) for p, v in _weights(head).items()), "head did not train"
    assert [s["stage"] for s in result.stages] == ["head"] and result.stages[0]["backbone_frozen"]


def test_stage_two_unfreezes_top_block_only_with_bn_frozen(tmp_path):
    ft = FinetuneConfig(freeze_backbone=True, epochs=1, unfreeze_blocks=1, learning_rate=1e-2)
    cfg, data, model = _setup(tmp_path, ft, learning_rate=1e-2)
    backbone = model.get_layer(BACKBONE_LAYER)
    # Stage 1 leaves the frozen backbone as built (test above), so these are stage 2's starting weights.
    before = _weights(backbone)
    result = fit_stages(model, data, cfg, str(tmp_path / "run"))
    after = _weights(backbone)
    changed = {p for p in after if not np.array_equal(after[p], before[p])}
    assert changed == {"block2_conv1/kernel"}, changed  # not block1, not BN gamma/beta/moving stats
    assert [s["stage"] for s in result.stages] == ["head", "finetune"]
    assert len(result.history["loss"]) == 2 and result.stages[1]["learning_rate"] == 1e-2
    with open(tmp_path / "run" / "history.csv") as fh:
        assert [row["stage"] for row in csv.DictReader(fh)] == ["head", "finetune"]
    assert os.path.isfile(tmp_path / "run" / "finetune" / "checkpoints" / "best.weights.h5")


def test_unfrozen_batchnorm_updates_its_statistics(tmp_path):
    # The counterpart of the test above: with freeze_batchnorm=False the moving statistics do move.
    cfg, data, model = _setup(tmp_path, FinetuneConfig())
    backbone = model.get_layer(BACKBONE_LAYER)
    unfreeze_top(model, blocks=1, freeze_batchnorm=False)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = _bn_stats(backbone)
    model.fit(data.train.take(2), epochs=1, verbose=0)
    after = _bn_stats(backbone)
    assert {p for p in after if not np.array_equal(after[p], before[p])} == {
        p for p in after if p.startswith("block2_bn")}


def test_unfreeze_counts_layers_and_blocks(tmp_path):
    _, _, model = _setup(tmp_path, FinetuneConfig())
    freeze_backbone(model)
    assert not model.get_layer(BACKBONE_LAYER).trainable_weights
    # block2 = conv, bn, relu, pool; BN stays frozen.
    assert unfreeze_top(model, blocks=1) == ["block2_conv1", "block2_relu1", "block2_pool"]
    assert unfreeze_top(model, layers=2) == ["block2_relu1", "block2_pool"]
    assert len(unfreeze_top(model, freeze_batchnorm=False)) == 8
    with pytest.raises(ConfigError, match="unfreeze_blocks=5 but backbone has 2 blocks: block1, block2"):
        unfreeze_top(model, blocks=5)
    with pytest.raises(ConfigError, match="not both"):
        unfreeze_top(model, layers=1, blocks=1)


def test_block_multipliers_decay_downwards(tmp_path):
    _, _, model = _setup(tmp_path, FinetuneConfig())
    unfreeze_top(model)
    multipliers = block_lr_multipliers(model, 0.5)
    assert multipliers == {"block2_conv1/kernel": 1.0, "block1_conv1/kernel": 0.5}


def test_lr_multipliers_scale_adam_updates_exactly():
    # Adam's first step moves each weight by lr * g/|g|: gradient scaling could not change it, LR scaling does.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, name="low")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="top")(x)
    model = keras.Model(inputs, outputs)
    optimizer = with_lr_multipliers(keras.optimizers.Adam(1e-2), {"low/kernel": 0.1, "low/bias": 0.1})
    assert isinstance(optimizer, MultiplierAdam)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    before = _weights(model)
    model.train_on_batch(np.random.rand(16, 4).astype("float32"), np.random.randint(0, 3, 16))
    steps = {p: np.abs(np.array(v) - before[p]).max() for p, v in _weights(model).items()}
    np.testing.assert_allclose(steps["low/kernel"], 1e-3, rtol=1e-2)
    np.testing.assert_allclose(steps["top/kernel"], 1e-2, rtol=1e-2)


def test_run_training_with_discriminative_finetune_saves_and_reloads(tmp_path):
    ft = FinetuneConfig(freeze_backbone=True, epochs=1, learning_rate=1e-3, lr_decay_per_block=0.5)
    cfg = dataclasses.replace(tiny_config(tmp_path), finetune=ft)
    report = run_training(cfg)
    assert [s["stage"] for s in report["stages"]] == ["head", "finetune"]
    assert report["stages"][1]["lr_multipliers"] == [1.0, 0.5]
    assert report["stages"][1]["trainable_params"] > report["stages"][0]["trainable_params"]
    model = keras.saving.load_model(os.path.join(report["run_dir"], "model.keras"), safe_mode=True)
    assert isinstance(model.optimizer, MultiplierAdam)
    assert model.optimizer.lr_multipliers["block1_conv1/kernel"] == 0.5


def test_bad_unfreeze_request_fails_before_stage_one(tmp_path):
    cfg, data, model = _setup(tmp_path, FinetuneConfig(epochs=1, unfreeze_blocks=9))
    with pytest.raises(ConfigError, match="unfreeze_blocks=9 but backbone has 2 blocks"):
        fit_stages(model, data, cfg, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run"), "stage 1 must not have run"
    from fmkeras.config import apply_overrides
    with pytest.raises(ConfigError, match="unfreeze_layers` or `finetune.unfreeze_blocks`, not both"):
        apply_overrides(cfg, {"finetune.unfreeze_layers": 2, "finetune.unfreeze_blocks": 1})


def test_stage_epochs_cut_by_a_budget():
    from fmkeras.config import RunConfig, TrainConfig
    from fmkeras.transfer.finetune import stage_epochs
    cfg = RunConfig(train=TrainConfig(epochs=3), finetune=FinetuneConfig(epochs=4))
    assert stage_epochs(cfg) == (3, 7)
    assert stage_epochs(cfg, 5) == (3, 5)
    assert stage_epochs(cfg, 2) == (2, 2)  # a budget inside stage 1 never reaches stage 2
    assert stage_epochs(dataclasses.replace(cfg, finetune=FinetuneConfig(epochs=0)), 5) == (5, 5)


def test_budget_and_initial_epoch_skip_finished_stage_and_call_extra_callbacks(tmp_path):
    """keras-tuner's Hyperband resumes a trial at `initial_epoch` with a `total_epochs` budget."""
    ft = FinetuneConfig(freeze_backbone=True, epochs=3, unfreeze_blocks=1, learning_rate=1e-2)
    cfg, data, model = _setup(tmp_path, ft, learning_rate=1e-2, epochs=1)

    class Seen(keras.callbacks.Callback):
        epochs = []

        def on_epoch_end(self, epoch, logs=None):
            Seen.epochs.append(epoch)

    result = fit_stages(model, data, cfg, str(tmp_path / "run"), total_epochs=3, initial_epoch=1,
                        extra_callbacks=[Seen()])
    assert [s["stage"] for s in result.stages] == ["finetune"]  # stage 1 (epoch 0) was done before
    assert Seen.epochs == [1, 2] and len(result.history["loss"]) == 2
    assert model.get_layer(BACKBONE_LAYER).get_layer("block2_conv1").trainable
