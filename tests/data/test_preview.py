"""fmkeras/data/preview.py and `fmkeras data preview`: a PNG grid of augmented samples."""
import numpy as np
import tensorflow as tf

from fmkeras.config import AugmentConfig, DataConfig
from fmkeras.data.preview import PAD, write_augmentation_preview
from tests.cli.test_cli import run_in_process


def _read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def test_grid_has_originals_then_augmented_draws(fashion_npz, tmp_path):
    cfg = DataConfig(source=f"npz:{fashion_npz}", augment=AugmentConfig(rotation=30, zoom=0.2))
    path = write_augmentation_preview(cfg, str(tmp_path / "out" / "grid.png"), images=3, variants=4)
    grid = _read_png(path)
    cell = 28 + PAD
    assert grid.shape == (3 * cell, 5 * cell, 1)
    cells = [[grid[r * cell:r * cell + 28, c * cell:c * cell + 28, 0] for c in range(5)] for r in range(3)]
    from fmkeras.data.sources import load_source
    np.testing.assert_array_equal(cells[0][0], load_source(cfg).x_train[0, ..., 0])  # column 0: the original
    assert all(not np.array_equal(cells[r][0], cells[r][c]) for r in range(3) for c in range(1, 5))
    assert not np.array_equal(cells[0][1], cells[0][2]), "each column must be a new draw"


def test_cli_data_preview_writes_the_png(fashion_npz, tmp_path, capsys):
    out = tmp_path / "preview.png"
    code = run_in_process("data", "preview", f"--data=npz:{fashion_npz}", "--set=data.augment.rotation=20",
                          "--set=data.augment.mixup=0.2", f"--preview_out={out}", "--preview_images=2",
                          "--preview_variants=3")
    assert code == 0 and "augmentation preview:" in capsys.readouterr().out
    assert _read_png(out).shape == (2 * (28 + PAD), 4 * (28 + PAD), 1)
    assert run_in_process("data", "show") == 2
    assert "`fmkeras data` needs a subcommand: preview" in capsys.readouterr().err


def test_cli_preview_shows_policies_and_erasing(fashion_npz, tmp_path):
    plain, policy = tmp_path / "plain.png", tmp_path / "policy.png"
    common = [f"--data=npz:{fashion_npz}", "--set=data.augment.horizontal_flip=true", "--preview_images=4",
              "--preview_variants=3"]
    assert run_in_process("data", "preview", *common, f"--preview_out={plain}") == 0
    assert run_in_process("data", "preview", *common, "--set=data.augment.policy=randaugment",
                          "--set=data.augment.policy_magnitude=1.0", "--set=data.augment.erase_prob=1.0",
                          f"--preview_out={policy}") == 0
    a, b = _read_png(plain), _read_png(policy)
    cell = 28 + PAD
    np.testing.assert_array_equal(a[:, :cell], b[:, :cell])  # same originals
    assert np.abs(a[:, cell:].astype(int) - b[:, cell:].astype(int)).mean() > 10  # the draws look different
