"""fmkeras/train/schedules.py and optimizers.py."""
import numpy as np
import pytest

import keras

from fmkeras.config import TrainConfig
from fmkeras.train.optimizers import apply_l2, build_optimizer
from fmkeras.train.schedules import LinearWarmupLinearDecay, build_schedule


def _values(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def test_linear_warmup_then_linear_decay():
    schedule = build_schedule(TrainConfig(schedule="linear", learning_rate=1e-3, warmup_steps=10), total_steps=110)
    np.testing.assert_allclose(_values(schedule, [0, 5, 10, 60, 110, 200]),
                               [0, 5e-4, 1e-3, 5e-4, 0, 0], atol=1e-9)
    again = LinearWarmupLinearDecay.from_config(schedule.get_config())
    assert float(again(5)) == pytest.approx(5e-4)


def test_cosine_with_warmup_peaks_then_decays():
    schedule = build_schedule(TrainConfig(schedule="cosine", learning_rate=1e-2, warmup_steps=4), total_steps=104)
    values = _values(schedule, [0, 2, 4, 54, 104])
    np.testing.assert_allclose(values, [0, 5e-3, 1e-2, 5e-3, 0], atol=1e-6)


def test_inverse_time_decay_matches_formula():
    cfg = TrainConfig(schedule="inverse_time", learning_rate=0.1, decay_rate=0.5, decay_steps=10)
    values = _values(build_schedule(cfg, 100), [0, 10, 40])
    np.testing.assert_allclose(values, 0.1 / (1 + 0.5 * np.array([0, 1, 4])), rtol=1e-6)


def test_constant_and_optimizer_kinds():
    assert build_schedule(TrainConfig(learning_rate=0.3), 10) == 0.3
    sgd = build_optimizer(TrainConfig(optimizer="sgd", momentum=0.9), 1e-3)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9
    adamw = build_optimizer(TrainConfig(optimizer="adamw", weight_decay=0.05), 1e-3)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == pytest.approx(0.05)


def test_l2_adds_penalty_equal_to_sum_of_squares():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    assert apply_l2(model, 0.01) == 1
    kernel = model.get_layer("d").kernel.numpy()
    assert float(sum(model.losses)) == pytest.approx(0.01 * float((kernel ** 2).sum()), rel=1e-5)
