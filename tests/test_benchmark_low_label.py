"""benchmarks/low_label.py --ceiling: the supervised oracle pretrains on the other training images only and is
reported beside (not instead of) the SimCLR arms."""
import argparse
import dataclasses
import importlib.util
import os

import numpy as np
import pytest

from fmkeras.config import AugmentConfig
from fmkeras.data import build_datasets, load_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("low_label_benchmark", os.path.join(ROOT, "benchmarks", "low_label.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

TINY = ["--limit-train", "300", "--limit-test", "100", "--labels-per-class", "5", "--filters", "8,8",
        "--projection", "16,8", "--pretrain-epochs", "1", "--epochs", "1"]


def test_ceiling_is_off_by_default_so_the_default_budget_is_unchanged():
    assert bench.parse_args([]).ceiling is False and bench.parse_args(["--ceiling"]).ceiling is True
    assert bench.parse_args([]).labels_per_class == 60 and bench.parse_args([]).limit_train is None


def test_oracle_source_holds_every_training_image_except_the_labelled_ones(tmp_path):
    args = argparse.Namespace(filters=(8, 8), pooling="flatten", seed=1, pretrain_epochs=1, pretrain_lr=1e-3,
                              temperature=0.2, projection=(16, 8), erase_prob=0.0, probe_epochs=0, epochs=1,
                              learning_rate=1e-3, finetune_epochs=0, finetune_lr=1e-4, labels_per_class=5,
                              limit_train=300, limit_test=100)
    _, low = bench.configs(args, str(tmp_path))
    path = str(tmp_path / "oracle.npz")
    assert bench.oracle_source(low, path) == 250
    with np.load(path) as npz:
        oracle_x, oracle_y = npz["x_train"], npz["y_train"]
        assert "x_test" not in npz.files  # the oracle never sees the test images
    # The images the low-label runs train on (no flips here, to compare pixels).
    data = build_datasets(load_source(low.data), dataclasses.replace(low.data, augment=AugmentConfig()), 64)
    labelled = np.concatenate([x.numpy() for x, _ in data.train]).astype(np.uint8)
    assert len(labelled) == 50 and len(oracle_x) == 250
    oracle_rows = {row.tobytes() for row in oracle_x.reshape(len(oracle_x), -1)}
    assert not oracle_rows & {row.tobytes() for row in labelled.reshape(50, -1)}
    assert np.bincount(oracle_y, minlength=10).sum() == 250


@pytest.mark.slow
def test_ceiling_arm_reports_oracle_probe_finetune_and_gain(capsys):
    report = bench.main([*TINY, "--ceiling"])
    oracle = report["oracle_supervised_pretrain"]
    assert set(report["test_accuracy"]) == {"scratch", "probe", "finetune"}  # the SimCLR arms are unchanged
    assert 0.0 <= oracle["probe"] <= 1.0 and 0.0 <= oracle["finetune"] <= 1.0
    assert oracle["epochs"] == oracle["max_epochs"] == 1  # as many epochs as SimCLR ran
    assert oracle["max_seconds"] == report["wall_seconds"]["pretrain"] and oracle["seconds"] > 0
    assert oracle["labels_used"] == 250 and "upper bound" in oracle["note"]
    assert report["ceiling_gain_points"] == round(100 * (oracle["finetune"] - report["test_accuracy"]["scratch"]), 2)
    assert '"ceiling_gain_points"' in capsys.readouterr().out


def test_photo_protocol_arguments_summary_and_curve(tmp_path):
    args = bench.parse_args(["--protocol", "photos"])
    assert args.shots == [2, 5, 10, 0] and args.draws == 3 and args.data.endswith(os.path.join("data", "hymenoptera"))
    summary = bench._summary([0.9, 0.8, 1.0])
    assert summary == {"mean": 0.9, "std": 0.0816, "min": 0.8, "max": 1.0, "runs": [0.9, 0.8, 1.0]}
    result = {"shots": [2, 0], "accuracy": {arm: {k: bench._summary(v) for k, v in runs.items()} for arm, runs in {
        "pretrained": {"2": [0.8, 0.9], "0": [0.95, 0.94]}, "scratch": {"2": [0.5, 0.52], "0": [0.6, 0.55]}}.items()}}
    path = tmp_path / "curve.png"
    bench.plot_photo_curve(result, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
