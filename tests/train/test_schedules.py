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


def test_one_cycle_lr_rises_then_anneals_and_momentum_mirrors_it():
    from fmkeras.train.schedules import OneCycle, one_cycle_momentum
    cfg = TrainConfig(schedule="one_cycle", learning_rate=0.1, one_cycle_pct_start=0.25)
    schedule = build_schedule(cfg, total_steps=100)
    assert isinstance(schedule, OneCycle) and schedule.warmup_steps == 25
    lr = _values(schedule, range(101))
    np.testing.assert_allclose(lr[[0, 25, 100]], [0.1 / 25, 0.1, 0.1 / 25 / 1e4], rtol=1e-5)
    assert np.all(np.diff(lr[:26]) > 0) and np.all(np.diff(lr[25:]) < 0)  # one rise, one fall
    end = 0.1 / 25 / 1e4  # step 75 is 2/3 of the way down the cosine: end + (peak - end) * (1 + cos(2 pi / 3)) / 2
    assert lr[75] == pytest.approx(end + (0.1 - end) * 0.25, rel=1e-4)
    momentum = np.array([float(one_cycle_momentum(s, 0.95, 0.85, 25, 100)) for s in range(101)])
    np.testing.assert_allclose(momentum[[0, 25, 100]], [0.95, 0.85, 0.95], atol=1e-6)
    assert np.argmax(lr) == np.argmin(momentum) == 25
    assert OneCycle.from_config(schedule.get_config()).get_config() == schedule.get_config()
    assert build_schedule(TrainConfig(schedule="one_cycle", warmup_steps=10), 100).warmup_steps == 10


@pytest.mark.parametrize("name,attribute", [("adam", "beta_1"), ("adamw", "beta_1"), ("sgd", "momentum")])
def test_one_cycle_momentum_reaches_the_optimizer_update(name, attribute):
    """The momentum each update uses follows the cycle: a one-weight model, gradient 1, read back exactly."""
    from fmkeras.train.schedules import one_cycle_momentum
    cfg = TrainConfig(schedule="one_cycle", optimizer=name, learning_rate=0.1, weight_decay=0.0)
    optimizer = build_optimizer(cfg, build_schedule(cfg, total_steps=8))
    assert optimizer.get_config()["momentum_cycle"] == {"high": 0.95, "low": 0.85, "warmup_steps": 2,
                                                        "total_steps": 8}
    weight = keras.Variable([0.0])
    optimizer.build([weight])
    seen = []
    for step in range(8):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor([1.0]), weight)])
        slot = optimizer.momentums[0] if name == "sgd" else optimizer._momentums[0]
        seen.append(float(slot.numpy()[0]))
    expected = [float(one_cycle_momentum(s, 0.95, 0.85, 2, 8)) for s in range(8)]
    # Replay the slot recurrence with the expected momenta: Adam m = b m + (1 - b) g; SGD m = mu m - lr g.
    m = 0.0
    schedule = build_schedule(cfg, total_steps=8)
    for step, mu in enumerate(expected):
        m = mu * m + (1 - mu) if name != "sgd" else mu * m - float(schedule(step))
        assert seen[step] == pytest.approx(m, rel=1e-5), (attribute, step)
    assert len(set(round(v, 4) for v in expected)) > 3  # it really cycled


def test_one_cycle_trains_through_fit_and_saves(tmp_path):
    """model.fit with the cycled optimizer, then save/load (the run directory's model.keras)."""
    cfg = TrainConfig(schedule="one_cycle", optimizer="adam", learning_rate=0.01)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(build_optimizer(cfg, build_schedule(cfg, 20)), "sparse_categorical_crossentropy")
    x, y = np.random.rand(80, 4).astype("float32"), np.random.randint(0, 3, 80)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 20
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert type(again.optimizer).__name__ == "CycledAdam"
    assert again.optimizer.get_config()["momentum_cycle"]["total_steps"] == 20
