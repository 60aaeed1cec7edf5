"""`fmkeras train --backbone=... --weights=... --data=...` for every backbone; `fmkeras list`."""
import json
import os

import pytest

from fmkeras.backbones import get_backbone, list_backbones
from fmkeras.config import to_dict
from fmkeras.recipes import list_recipes
from fmkeras.transfer import weights as weights_module
from tests.cli.test_cli import _error_lines, run_in_process

# Whole runs (train, evaluate with Grad-CAM, save, report) of the full-width nets take 20-95 s each on 2 shared
# cores; tests/backbones trains, saves and exports every backbone. Here they go from the flags as far as their
# model (built at the flags' input size, then stopped), and two small nets run the whole command.
WHOLE_RUN = {"cnn", "lenet"}
IMAGE_BACKBONES = [b for b in list_backbones() if get_backbone(b).modality == "image"]


class _Built(Exception):
    """Raised by the stand-in for training once the run's model is built."""


def _build_then_stop(monkeypatch):
    """`fmkeras train` builds the run's model (as Experiment does: source, prepare, datasets, model), then stops."""
    import fmkeras.experiment as experiment
    from fmkeras.tasks import task_for_source
    built = {}

    def build(cfg):
        task = task_for_source(cfg.data.source)
        source = task.load_source(cfg)
        cfg = task.prepare(cfg, source)
        built["cfg"], built["model"] = cfg, task.build_model(cfg, task.build_datasets(source, cfg))
        raise _Built()
    monkeypatch.setattr(experiment, "run_training", build)
    return built


@pytest.mark.parametrize("backbone", IMAGE_BACKBONES)
def test_train_any_backbone_from_flags(backbone, tmp_path, fashion_npz, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    built = _build_then_stop(monkeypatch) if backbone not in WHOLE_RUN else None
    args = ("train", f"--backbone={backbone}", "--weights=none", f"--data=npz:{fashion_npz}",
                          "--epochs=1", "--set=train.steps_per_epoch=1", "--set=train.verbose=0",
            "--set=model.input_size=32,32", "--batch_size=8", "--noexport", f"--run_dir={run_dir}")
    if built is not None:
        with pytest.raises(_Built):
            run_in_process(*args)
        cfg = to_dict(built["cfg"])
        assert built["model"].output_shape[-1] == 10 and tuple(cfg["model"]["input_size"]) == (32, 32)
        assert cfg["train"]["epochs"] == 1 and cfg["train"]["batch_size"] == 8
        assert cfg["model"]["backbone"] == backbone and cfg["model"]["weights"] in (None, "none")
        if backbone != "cnn":
            assert cfg["model"]["backbone_options"] == {}
        return
    assert run_in_process(*args) == 0, capsys.readouterr().err
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
    from fmkeras.recipes import default_recipe
    assert f"  {default_recipe()}  (the default on this machine" in out and out.count("(the default") == 1
