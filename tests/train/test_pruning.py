"""fmkeras/train/pruning.py: gradual magnitude pruning reaches its sparsity, keeps masks, saves plain zeros."""
import dataclasses

import keras
import numpy as np
import pytest

from fmkeras.train.pruning import magnitude_mask, prunable_kernels, sparsity_report, target_sparsity


def test_polynomial_schedule_and_magnitude_mask():
    values = [target_sparsity(s, 0.8, 100, begin=0.1, end=0.5) for s in (0, 10, 30, 50, 90)]
    assert values[0] == values[1] == 0.0 and values[3] == values[4] == pytest.approx(0.8)
    assert values[2] == pytest.approx(0.8 * (1 - 0.5 ** 3))  # half way: 7/8 of the final sparsity
    assert target_sparsity(20, 0.8, 100, schedule="constant", begin=0.1) == 0.8
    w = np.array([[0.1, -3.0], [2.0, -0.05]], np.float32)
    np.testing.assert_array_equal(magnitude_mask(w, 0.5), [[0, 1], [1, 0]])


def test_pruned_run_reaches_the_sparsity_and_keeps_it_through_finetuning(tmp_path):
    from fmkeras.experiment import run_training
    from tests.conftest import tiny_config
    cfg = tiny_config(tmp_path, epochs=2, prune_sparsity=0.75, prune_frequency=2, learning_rate=3e-3)
    cfg = dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, epochs=1, learning_rate=1e-3),
                              export=dataclasses.replace(cfg.export, base_dir=str(tmp_path / "exported")))
    report = run_training(cfg)
    assert report["pruning"]["sparsity"] == pytest.approx(0.75, abs=0.01)
    assert all(v == pytest.approx(0.75, abs=0.02) for v in report["pruning"]["per_kernel"].values())
    saved = keras.models.load_model(f"{report['run_dir']}/model.keras")
    assert sparsity_report(saved)["sparsity"] == pytest.approx(0.75, abs=0.01)  # plain layers, zeros in them
    assert not any("prune" in layer.name for layer in saved._flatten_layers())  # nothing to strip
    assert np.isfinite(report["test"]["accuracy"])


def test_masks_survive_updates_and_later_stages():
    from fmkeras.train.pruning import GradualPruning
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    x, y = np.random.rand(256, 8).astype("float32"), np.random.randint(0, 2, 256)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[GradualPruning(0.5, 16, "constant", frequency=1)])
    pruned = [k.numpy() == 0 for k in prunable_kernels(model)]
    assert all(p.mean() == pytest.approx(0.5, abs=0.05) for p in pruned)
    # A later stage with a higher target never revives a pruned weight.
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[GradualPruning(0.8, 16, "constant", frequency=1)])
    for before, kernel in zip(pruned, prunable_kernels(model)):
        assert (kernel.numpy()[before] == 0).all() and (kernel.numpy() == 0).mean() == pytest.approx(0.8, abs=0.05)
