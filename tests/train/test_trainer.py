"""fmkeras/train/trainer.py: fit writes its files and keeps the best weights."""
import os

import numpy as np

from fmkeras.data import build_datasets, load_source
from fmkeras.train import fit, seed_everything
from fmkeras.transfer import build_classifier
from tests.conftest import tiny_config


def _setup(tmp_path, **train):
    cfg = tiny_config(tmp_path, **train)
    seed_everything(cfg.train)
    data = build_datasets(load_source(cfg.data), cfg.data, cfg.train.batch_size)
    return cfg, data, build_classifier(cfg.model, data.image_shape, len(data.class_names))


def test_fit_learns_and_writes_run_files(tmp_path):
    cfg, data, model = _setup(tmp_path, epochs=3, learning_rate=3e-3)
    result = fit(model, data, cfg.train, str(tmp_path / "run"))
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert len(result.epochs) == 3 and all(e["images_per_second"] > 0 for e in result.epochs)
    assert all(0 < e["cpu_seconds"] <= e["seconds"] * (os.cpu_count() or 1) + 0.5 for e in result.epochs)
    for name in ("checkpoints/best.weights.h5", "history.csv"):
        assert os.path.isfile(tmp_path / "run" / name), name
    assert os.listdir(tmp_path / "run" / "logs"), "TensorBoard logs missing"
    # The model holds the best checkpoint's weights (lowest val_loss), not the last epoch's.
    best = int(np.argmin(result.history["val_loss"]))
    scores = model.evaluate(data.val, verbose=0, return_dict=True)
    assert abs(scores["loss"] - result.history["val_loss"][best]) < 1e-3


def test_label_smoothing_and_sgd_train(tmp_path):
    cfg, data, model = _setup(tmp_path, optimizer="sgd", label_smoothing=0.1, schedule="inverse_time")
    result = fit(model, data, cfg.train, str(tmp_path / "run"))
    assert np.isfinite(result.history["loss"][0]) and "val_accuracy" in result.history


def test_same_seed_same_weights(tmp_path):
    weights = []
    for run in ("a", "b"):
        cfg, data, model = _setup(tmp_path / run, deterministic=True)
        fit(model, data, cfg.train, str(tmp_path / run / "run"))
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_mixup_soft_labels_switch_the_loss_to_categorical(tmp_path, fashion_npz):
    import dataclasses

    from fmkeras.config import AugmentConfig
    cfg = tiny_config(tmp_path)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, source=f"npz:{fashion_npz}", limit_train=256, augment=AugmentConfig(mixup=0.4, cutmix=1.0)))
    data = build_datasets(load_source(cfg.data), cfg.data, cfg.train.batch_size)
    assert data.train.element_spec[1].shape.as_list() == [None, 10]
    model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    result = fit(model, data, cfg.train, str(tmp_path / "run"))
    assert type(model.loss).__name__ == "CategoricalCrossentropy"
    assert np.isfinite(result.history["loss"][0]) and np.isfinite(result.history["val_loss"][0])


def test_ema_weights_are_validated_checkpointed_and_returned(tmp_path):
    import keras

    class RawWeights(keras.callbacks.Callback):
        """The training (not averaged) weights at each epoch's last step."""
        def __init__(self):
            super().__init__()
            self.last, self.per_epoch = None, []

        def on_train_batch_end(self, batch, logs=None):
            self.last = [w.copy() for w in self.model.get_weights()]

        def on_epoch_end(self, epoch, logs=None):
            self.per_epoch.append(self.last)

    cfg, data, model = _setup(tmp_path, epochs=3, learning_rate=3e-3, ema_momentum=0.9)
    raw = RawWeights()
    result = fit(model, data, cfg.train, str(tmp_path / "run"), extra_callbacks=[raw])
    assert model.optimizer.use_ema
    best = int(np.argmin(result.history["val_loss"]))
    # The returned model holds the averaged weights of the best epoch: what validation scored ...
    scores = model.evaluate(data.val, verbose=0, return_dict=True)
    assert abs(scores["loss"] - result.history["val_loss"][best]) < 1e-3
    # ... and not that epoch's training weights.
    gap = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), raw.per_epoch[best]))
    assert gap > 1e-4, gap


def test_ema_with_resume_is_refused(tmp_path):
    import dataclasses

    import pytest

    from fmkeras.config import validate
    from fmkeras.errors import ConfigError
    cfg = tiny_config(tmp_path, ema_momentum=0.99, backup_every_steps=5)
    with pytest.raises(ConfigError, match="train.ema_momentum"):
        validate(cfg)
    with pytest.raises(ConfigError, match="train.ema_momentum"):
        validate(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, backup_every_steps=0,
                                                                    ema_momentum=1.0)))
