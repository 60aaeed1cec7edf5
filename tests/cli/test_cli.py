"""fmkeras CLI: user errors are one line + exit 2; list, train, evaluate and export work."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fmkeras(*args, cwd=None, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "fmkeras.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("fmkeras: error:")]


def run_in_process(*args):
    """Parses flags and runs main() like the console script, without a new interpreter."""
    from fmkeras.cli.flags import FLAGS
    from fmkeras.cli.main import main
    FLAGS.unparse_flags()
    argv = FLAGS(["fmkeras", *args])
    try:
        return main(argv)
    finally:
        FLAGS.unparse_flags()


@pytest.mark.parametrize("args,message", [
    (["train", "--data=folder:/no/such/dir"], "image folder not found: /no/such/dir"),
    (["train", "--data=idx:/no/such/dir"], "data directory not found: /no/such/dir"),
    (["train", "--recipe=nope"], "unknown recipe 'nope'; available recipes: "),
    (["train", "--data=tfds:no_such_set"], "unknown TFDS dataset 'no_such_set'"),
    (["train", "--set=train.optimizer=lamb"], "`train.optimizer` must be one of adam, adamw, sgd"),
    (["train", "--set=tune.max_trials=3"], "tune.max_trials is a setting of `fmkeras tune`, not of `fmkeras train`"),
    (["train", "--max_trials=3"], "tune.max_trials is a setting of `fmkeras tune`, not of `fmkeras train`"),
    (["train", "--backbone=resnet9000"], "unknown backbone 'resnet9000'"),
    (["train", "--config=/no/such.yaml"], "config file not found: /no/such.yaml"),
    (["frobnicate"], "unknown command 'frobnicate'"),
])
def test_user_errors_are_one_line_with_status_2(tmp_path, capsys, args, message):
    assert run_in_process(*args, f"--set=run_root={tmp_path}") == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and message in lines[0], lines
    assert not os.listdir(tmp_path), "a failed start must not leave a run directory behind"


def test_empty_image_folder_exits_2_without_traceback(tmp_path):
    (tmp_path / "imgs").mkdir()
    result = fmkeras("train", f"--data=folder:{tmp_path / 'imgs'}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "has no class sub-folders" in _error_lines(result.stderr)[0]


def test_help_and_list_describe_commands(capsys):
    result = fmkeras("--help")  # absl exits 1 after printing help
    assert "train" in result.stdout and "evaluate" in result.stdout and "--helpfull" in result.stdout
    assert run_in_process("list") == 0
    listed = capsys.readouterr().out
    assert "cnn" in listed and "cnn_fashion" in listed


@pytest.mark.slow
def test_train_evaluate_export_end_to_end_on_real_images(tmp_path):
    """A thousand real Fashion-MNIST images, 2 epochs, export, reload, predict."""
    # No warmup: the recipe's 200 warmup steps would keep the LR near zero for this tiny run.
    # Deterministic: 2 epochs on 1000 images lands anywhere in 0.26..0.45 with tf.data's
    # non-deterministic ordering (the default), so the threshold below needs a reproducible run.
    result = fmkeras("train", "--epochs=2", "--limit_train=1000", "--name=e2e", "--set=data.limit_test=200",
                     "--set=train.warmup_steps=0", "--set=train.schedule=constant",
                     "--set=train.deterministic=true",
                     # float32: the served accuracy must equal the evaluated one exactly; in the recipe's
                     # `auto` (bfloat16 on this CPU) the exported graph rounds differently and flipped 2 of 200
                     # near-tie argmaxes of this barely trained model (0.265 vs 0.275) in one CI run
                     "--set=train.precision=float32", "--batch_size=64",
                     f"--set=run_root={tmp_path / 'runs'}", f"--export_dir={tmp_path / 'sm'}",
                     "--set=train.verbose=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = next((tmp_path / "runs").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_train"] == 1000 and metrics["test"]["num_examples"] == 200
    # Chance is 0.1. After 32 steps of 64 the test accuracy depends on the seeded data order (the default
    # recipe's batch 256 gives only 8 steps: 0.18 in float32; 0.31 with these 32).
    assert 0.2 < metrics["test"]["accuracy"] <= 1.0
    for name in ("config.json", "model.keras", "history.csv", "plots/training_curves.png",
                 "plots/test_confusion.png", "plots/test_misclassified.png", "plots/test_metrics.json"):
        assert (run_dir / name).is_file(), name
    assert metrics["export"]["path"].endswith("sm/e2e/1")

    import numpy as np
    import tensorflow as tf
    from fmkeras.data.idx import fashion_mnist_source
    pixels = fashion_mnist_source().x_test[:200]
    served = tf.saved_model.load(metrics["export"]["path"]).signatures["serve_pixels"](pixels=tf.constant(pixels))
    served_acc = float((served["class_ids"].numpy() == fashion_mnist_source().y_test[:200]).mean())
    assert abs(served_acc - metrics["test"]["accuracy"]) < 1e-6

    evaluated = fmkeras("evaluate", f"--model={run_dir}", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert report["accuracy"] == metrics["test"]["accuracy"]

    exported = fmkeras("export", f"--run_dir={run_dir}", f"--export_dir={tmp_path / 'sm'}", cwd=tmp_path)
    assert exported.returncode == 0 and (tmp_path / "sm" / "e2e" / "2" / "saved_model.pb").is_file()
    np.testing.assert_allclose(
        tf.saved_model.load(str(tmp_path / "sm" / "e2e" / "2")).signatures["serve_pixels"](
            pixels=tf.constant(pixels[:4]))["probabilities"].numpy(),
        served["probabilities"].numpy()[:4], atol=1e-5)
