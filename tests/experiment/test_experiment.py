"""fmkeras/experiment: one run directory and one metrics.json layout for image and text runs, the tune retrain
going through the same Experiment, commands of one task refusing the other task's sources by name, and the
multi-worker loop refusing what it cannot honour."""
from __future__ import annotations

import dataclasses
import json
import os

import pytest

from fmkeras.config import (DataConfig, ExportConfig, FinetuneConfig, ModelConfig, RunConfig, TextConfig,
                            TrainConfig, apply_overrides)
from fmkeras.errors import ConfigError
from fmkeras.experiment import Experiment, finished_run, run_training
from fmkeras.experiment.report import REPORT_KEYS
from tests.conftest import tiny_config
from tests.tune.test_text_search import write_topics_csv


def _text_config(tmp_path, **changes) -> RunConfig:
    csv_path = write_topics_csv(str(tmp_path / "topics.csv"), per_class=40, test_per_class=10)
    cfg = RunConfig(name="topics", run_root=str(tmp_path / "runs"),
                    data=DataConfig(source=f"text:{csv_path}", validation_split=0.2),
                    model=ModelConfig(backbone="text_transformer", backbone_options={
                        "size": "tiny", "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32}),
                    text=TextConfig(max_tokens=100, sequence_length=8),
                    train=TrainConfig(epochs=1, batch_size=16, verbose=0),
                    export=ExportConfig(base_dir=str(tmp_path / "saved_models")))
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    return run_training(_text_config(tmp_path_factory.mktemp("text_run")))


def test_image_and_text_runs_write_one_report_layout(tmp_path, text_run):
    image = run_training(tiny_config(tmp_path))
    for report in (image, text_run):
        assert list(report) == list(REPORT_KEYS)
        with open(os.path.join(report["run_dir"], "metrics.json")) as fh:
            assert set(json.load(fh)) == set(REPORT_KEYS)
    assert (image["task"], image["modality"], image["vocabulary_size"]) == ("image_classification", "image", None)
    assert (text_run["task"], text_run["image_shape"]) == ("text_classification", None)
    assert text_run["vocabulary_size"] > 10 and image["image_shape"] == [28, 28, 1]


def test_text_exports_carry_the_file_manifest_the_server_checks(text_run):
    from fmkeras.export.saved_model import load_metadata
    from fmkeras.serve.servable import is_complete
    path = text_run["export"]["path"]
    files = load_metadata(path)["files"]
    assert "saved_model.pb" in files and any(name.startswith("variables/") for name in files)
    assert is_complete(path)
    with open(os.path.join(path, "saved_model.pb"), "ab") as fh:  # a half-copied / altered version
        fh.write(b"x")
    assert not is_complete(path)


def test_tune_retrain_is_an_ordinary_run_that_export_can_read(tmp_path):
    from fmkeras.experiment.finished_runs import export
    from fmkeras.data import load_source
    from fmkeras.tune.retrain import retrain_best
    from fmkeras.data import build_datasets
    cfg = tiny_config(tmp_path)
    source = load_source(cfg.data)
    search = build_datasets(source, cfg.data, 64)
    report = retrain_best(cfg, source, str(tmp_path / "search" / "best"), total_epochs=1)
    assert list(report) == list(REPORT_KEYS)
    _, metrics = finished_run(str(tmp_path / "search" / "best"))
    assert metrics["class_names"] == report["class_names"] and len(metrics["class_names"]) == 10
    assert (metrics["num_val"], metrics["num_train"]) == (0, search.num_train + search.num_val)  # no validation
    exported = export(str(tmp_path / "search" / "best"), apply_overrides(
        RunConfig(), {"export.base_dir": str(tmp_path / "again")}))
    assert exported["version"] == 1


@pytest.mark.parametrize("command", ["pretrain", "lowlabel", "distill"])
def test_image_only_commands_refuse_text_sources_by_name(tmp_path, command):
    from fmkeras.tasks import load_image_source
    cfg = _text_config(tmp_path)
    with pytest.raises(ConfigError, match=f"`fmkeras {command}` supports image sources, not text ones.*"
                                          f"Received: data.source='text:"):
        load_image_source(cfg, command)


def test_text_pretraining_points_at_the_masked_token_pretrainer(tmp_path):
    from fmkeras.tasks import load_image_source
    with pytest.raises(ConfigError, match="python -m fmkeras.pretrain.text_mlm"):
        load_image_source(_text_config(tmp_path), "pretrain")


def test_tflite_and_fgsm_refuse_a_text_run_by_name(text_run):
    from fmkeras.experiment.finished_runs import export_tflite, robust_evaluate
    with pytest.raises(ConfigError, match="`fmkeras export --format=tflite` supports image sources"):
        export_tflite(text_run["run_dir"])
    with pytest.raises(ConfigError, match="`fmkeras evaluate --fgsm_epsilon` supports image sources"):
        robust_evaluate(text_run["run_dir"], None, [0.1])


@pytest.mark.parametrize("setting, value", [("finetune.epochs", 1), ("train.adversarial", "fgsm"),
                                            ("train.loss", "symmetric"), ("finetune.lr_decay_per_block", 0.5)])
def test_multi_worker_loop_refuses_what_it_would_ignore(setting, value):
    from fmkeras.experiment.loops import check_multi_worker_settings
    cfg = apply_overrides(RunConfig(), {setting: value})
    with pytest.raises(ConfigError, match=f"`{setting}` is not supported by the multi-worker loop.*"
                                          f"Received: {setting}="):
        check_multi_worker_settings(cfg)
    check_multi_worker_settings(RunConfig())  # the defaults train there


def test_multi_worker_loop_honours_freeze_backbone(monkeypatch, tmp_path):
    from fmkeras.data import build_datasets, load_source
    from fmkeras.experiment import loops
    from fmkeras.transfer import build_classifier
    seen = {}

    def fake_fit_distributed(model, data, train_cfg, run_dir, strategy, **kwargs):
        seen["backbone_trainable"] = model.get_layer("backbone").trainable
    monkeypatch.setattr(loops, "needs_custom_loop", lambda strategy: True)
    monkeypatch.setattr(loops, "fit_distributed", fake_fit_distributed)
    cfg = dataclasses.replace(tiny_config(tmp_path), finetune=FinetuneConfig(freeze_backbone=True))
    data = build_datasets(load_source(cfg.data), cfg.data, 64)
    model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    loop = loops.Loop(strategy=None)
    assert loop.name == "multi_worker"
    loop(model, data, cfg, str(tmp_path))
    assert seen == {"backbone_trainable": False}


def test_experiment_trains_an_injected_source(tmp_path):
    from fmkeras.data import load_source
    cfg = tiny_config(tmp_path)
    source = load_source(dataclasses.replace(cfg.data, classes=(0, 1)))
    report = Experiment(cfg, source=source).run()
    assert report["class_names"] == ["T-shirt/top", "Trouser"]


def test_image_runs_refuse_an_ensemble_by_name(tmp_path):
    cfg = apply_overrides(tiny_config(tmp_path), {"model.ensemble": 3})
    with pytest.raises(ConfigError, match="`model.ensemble` > 1 trains text classifiers.*Received: model.ensemble=3"):
        Experiment(cfg).run()
    assert not os.path.exists(tmp_path / "runs")  # refused before anything was written
