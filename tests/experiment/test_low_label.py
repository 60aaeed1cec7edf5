"""fmkeras/experiment/low_label.py + `fmkeras lowlabel`: k labels per class, probe freezes, fine-tune trains."""
import dataclasses
import json

import keras
import numpy as np
import pytest

from fmkeras.backbones.cnn import build_cnn
from fmkeras.config import DataConfig
from fmkeras.errors import ConfigError
from fmkeras.experiment.low_label import train_low_label
from fmkeras.transfer import BACKBONE_LAYER
from tests.cli.test_cli import run_in_process
from tests.conftest import tiny_config

OPTIONS = {"filters": (4, 8)}


@pytest.fixture()
def backbone_file(tmp_path):
    path = str(tmp_path / "pretrained.keras")
    build_cnn((28, 28, 1), **OPTIONS).save(path)
    return path


def _cfg(tmp_path):
    cfg = tiny_config(tmp_path)
    return dataclasses.replace(
        cfg, data=DataConfig(labels_per_class=5, validation_split=0.0, limit_test=100),
        model=dataclasses.replace(cfg.model, backbone_options=OPTIONS))


def test_probe_keeps_the_pretrained_backbone_and_finetune_changes_it(tmp_path, backbone_file):
    saved = keras.saving.load_model(backbone_file).get_weights()
    probe, model = train_low_label(_cfg(tmp_path), "probe", backbone_file, str(tmp_path / "ll"))
    assert probe["labels"] == 50 and probe["trainable_params"] == 8 * 10 + 10  # pooled features -> softmax
    for a, b in zip(saved, model.get_layer(BACKBONE_LAYER).get_weights()):
        np.testing.assert_array_equal(a, b)
    tuned, model = train_low_label(_cfg(tmp_path), "finetune", backbone_file, str(tmp_path / "ll"))
    assert tuned["trainable_params"] > probe["trainable_params"]
    assert not np.allclose(saved[0], model.get_layer(BACKBONE_LAYER).get_weights()[0])
    with pytest.raises(ConfigError, match="needs a pretrained backbone file"):
        train_low_label(_cfg(tmp_path), "probe", None)


def test_lowlabel_cli_with_dashed_flag_writes_report(tmp_path, capsys, backbone_file):
    from fmkeras.cli.main import underscore_flag_names
    args = underscore_flag_names(["lowlabel", "--labels-per-class=3", f"--weights={backbone_file}",
                                  "--low-label-modes=scratch,probe", "--set=model.backbone_options={filters: [4, 8]}",
                                  "--set=data.validation_split=0", "--set=data.limit_test=100", "--epochs=1",
                                  "--set=train.verbose=0", "--set=train.warmup_steps=0", f"--run_dir={tmp_path / 'r'}"])
    assert args[1] == "--labels_per_class=3"
    assert run_in_process(*args) == 0
    report = json.loads((tmp_path / "r" / "low_label.json").read_text())
    assert set(report["results"]) == {"scratch", "probe"} and report["labels_per_class"] == 3
    assert report["results"]["scratch"]["labels"] == 30
    assert "probe" in report["gain_over_scratch"]
    assert '"scratch"' in capsys.readouterr().out


@pytest.mark.slow
def test_staged_finetune_probes_first_and_every_mode_gets_the_same_epochs(tmp_path, backbone_file):
    from fmkeras.config import FinetuneConfig
    cfg = dataclasses.replace(_cfg(tmp_path), finetune=FinetuneConfig(freeze_backbone=True, epochs=1,
                                                                      learning_rate=1e-3, freeze_batchnorm=False))
    tuned, model = train_low_label(cfg, "finetune", backbone_file, str(tmp_path / "ll"))
    head, tune = tuned["stages"]
    assert head["backbone_frozen"] and head["trainable_params"] == 8 * 16 + 16 + 16 * 10 + 10  # head only
    assert tune["learning_rate"] == 1e-3 and tune["trainable_params"] > head["trainable_params"]
    assert tuned["epochs"] == cfg.train.epochs + 1
    scratch, _ = train_low_label(cfg, "scratch", None, str(tmp_path / "ll"))
    assert scratch["epochs"] == tuned["epochs"] and "stages" not in scratch
