"""fmkeras/train/lr_find.py: the LR range test on a tiny model and real Fashion-MNIST, from Python and the CLI."""
import json
import os

import keras
import numpy as np
import pytest

from fmkeras.config import DataConfig, HeadConfig, ModelConfig, TrainConfig
from fmkeras.data import build_datasets
from fmkeras.train.lr_find import lr_range_test, smooth, suggest
from fmkeras.transfer import build_classifier

TINY_MODEL = ModelConfig(backbone_options={"filters": (8, 16)}, head=HeadConfig(pooling="avg"))


def test_smoothing_is_bias_corrected_and_suggestion_is_the_steepest_fall():
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0 at the start
    lrs = np.logspace(-5, 0, 50)
    loss = 2.0 - np.tanh((np.log10(lrs) + 3) * 2)  # falls fastest at lr = 1e-3
    loss[40:] += np.linspace(0, 5, 10)  # then diverges
    assert suggest(lrs, loss, skip_start=0) == pytest.approx(1e-3, rel=0.3)


def test_range_test_on_fashion_mnist_suggests_a_sane_rate_and_leaves_weights(fashion):
    data = build_datasets(fashion, DataConfig(limit_train=2048, validation_split=0.0), batch_size=32)
    model = build_classifier(TINY_MODEL, data.image_shape, 10)
    before = [w.copy() for w in model.get_weights()]
    result = lr_range_test(model, data.train, TrainConfig(optimizer="adam"), min_lr=1e-6, max_lr=10.0, steps=120)
    # Adam on a small BN CNN learns between ~1e-4 and ~1e-1; the sweep must find that, not an edge.
    assert 1e-4 <= result.suggested_lr <= 1e-1, result.suggested_lr
    assert result.suggested_lr <= result.min_loss_lr
    assert np.isfinite(result.smoothed_losses[: result.learning_rates.index(result.min_loss_lr) + 1]).all()
    assert min(result.smoothed_losses) < result.smoothed_losses[5] - 0.3  # the loss really fell
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    lrs = np.asarray(result.learning_rates)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], (10.0 / 1e-6) ** (1 / 119), rtol=1e-9)  # exponential


def run_in_process(*args):
    """Parses flags and runs main() like the console script (as tests/cli/test_cli.py does)."""
    from fmkeras.cli.flags import FLAGS
    from fmkeras.cli.main import main
    FLAGS.unparse_flags()
    try:
        return main(FLAGS(["fmkeras", *args]))
    finally:
        FLAGS.unparse_flags()


def test_cli_writes_json_and_png_and_prints_the_suggestion(tmp_path, capsys):
    out = tmp_path / "lrf"
    code = run_in_process("lr_find", "--recipe=cnn_fashion", "--set=data.limit_train=1024",
                          "--set=model.backbone_options={filters: [4, 8]}", "--set=train.batch_size=32",
                          "--lr_find_steps=40", "--lr_find_min=1e-5", f"--lr_find_out={out}")
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "lr_find.json").read_text())
    assert f"suggested learning rate: {report['suggested_learning_rate']:.3g}" in printed
    assert len(report["learning_rates"]) == len(report["losses"]) == len(report["smoothed_losses"]) == report["steps"]
    assert report["learning_rates"][0] == pytest.approx(1e-5)
    assert 1e-5 <= report["suggested_learning_rate"] <= report["min_loss_learning_rate"]
    with open(out / "lr_find.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(out / "lr_find.png") > 5000


def test_bad_sweep_bounds_are_refused():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="`min_lr` must be > 0 and < `max_lr`"):
        lr_range_test(model, None, min_lr=1.0, max_lr=0.1)
