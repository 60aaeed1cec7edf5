"""`fmkeras train --backbone=... --weights=... --data=...` for every backbone; `fmkeras list`."""
import json
import os

import pytest

from fmkeras.backbones import get_backbone, list_backbones
from fmkeras.recipes import list_recipes
from fmkeras.transfer import weights as weights_module
from tests.cli.test_cli import _error_lines, run_in_process

# Full-width nets take 15-60 s to build and step on 2 shared cores; tests/backbones covers them fast.
HEAVY = {"alexnet", "resnet18", "resnet34", "resnet50v2", "vgg16"}


@pytest.mark.parametrize("backbone", [pytest.param(b, marks=pytest.mark.slow) if b in HEAVY else b
                                      for b in list_backbones() if get_backbone(b).modality == "image"])
def test_train_any_backbone_from_flags(backbone, tmp_path, fashion_npz, capsys):
    run_dir = tmp_path / "run"
    assert run_in_process("train", f"--backbone={backbone}", "--weights=none", f"--data=npz:{fashion_npz}",
                          "--epochs=1", "--set=train.steps_per_epoch=1", "--set=train.verbose=0",
                          "--set=model.input_size=32,32", "--batch_size=8", "--noexport",
                          f"--run_dir={run_dir}") == 0, capsys.readouterr().err
    with open(run_dir / "config.json") as fh:
        cfg = json.load(fh)
    assert cfg["model"]["backbone"] == backbone
    if backbone != "cnn":  # the default recipe's cnn options must not reach another backbone
        assert cfg["model"]["backbone_options"] == {}
    assert os.path.isfile(run_dir / "metrics.json")


def test_imagenet_offline_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys, fashion_npz):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setattr(weights_module, "network_reachable", lambda *a, **k: False)
    assert run_in_process("train", "--backbone=vgg16", "--weights=imagenet", f"--data=npz:{fashion_npz}",
                          f"--set=run_root={tmp_path / 'runs'}") == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert f"place vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 in {tmp_path / 'kh' / 'models'}" in lines[0]
    assert not os.path.exists(tmp_path / "runs")


def test_list_names_every_backbone_and_recipe(capsys):
    assert run_in_process("list") == 0
    out = capsys.readouterr().out
    for name in list_backbones() + list_recipes():
        assert f"  {name}" in out, name
