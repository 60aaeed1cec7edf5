"""Text runs end to end: train (run_training / fmkeras train), evaluate, export; serving takes raw strings."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from fmkeras.config import (DataConfig, ExportConfig, HeadConfig, ModelConfig, RunConfig, TextConfig, TrainConfig,
                            apply_overrides)
from fmkeras.data.debian_packages import index_files, write_debian_packages_csv
from fmkeras.errors import ConfigError
from fmkeras.experiment import MODEL_FILE, run_training
from fmkeras.export import load_metadata
from tests.cli.test_cli import run_in_process

TINY = {"size": "tiny", "dim": 32, "depth": 1, "heads": 2, "mlp_dim": 64, "dropout": 0.1}


@pytest.mark.slow
def test_text_run_trains_evaluates_and_exports_a_string_model(tmp_path):
    cfg = RunConfig(name="text", run_root=str(tmp_path / "runs"),
                    data=DataConfig(source="text:debian", limit_train=1500, limit_test=400, validation_split=0.2),
                    model=ModelConfig(backbone="text_transformer", backbone_options=TINY, head=HeadConfig()),
                    text=TextConfig(max_tokens=4000, sequence_length=24),
                    train=TrainConfig(epochs=4, batch_size=64, learning_rate=3e-3, verbose=0),
                    export=ExportConfig(base_dir=str(tmp_path / "saved_models")))
    report = run_training(cfg)
    assert report["modality"] == "text" and len(report["class_names"]) == 8
    # 8 sections, the largest is ~22%: a model that reads the words does far better
    assert report["test"]["accuracy"] > 0.4, report["test"]["accuracy"]
    for name in ("config.json", MODEL_FILE, "metrics.json", "plots/test_confusion.png",
                 "plots/test_misclassified.json"):
        assert os.path.isfile(os.path.join(report["run_dir"], name)), name
    texts = tf.constant(["multiplayer chess game with network play", "ip packet sniffer and firewall tool",
                         "molecular dynamics simulation package"])
    model = keras.saving.load_model(os.path.join(report["run_dir"], MODEL_FILE), safe_mode=True)
    expected = model(texts).numpy()
    path = report["export"]["path"]
    assert load_metadata(path)["modality"] == "text"
    served = tf.saved_model.load(path).signatures["serving_default"]
    out = served(text=texts)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    assert [n.decode() for n in out["class_names"].numpy()] == [report["class_names"][i] for i in expected.argmax(1)]


# text:debian reads the committed snapshot everywhere; only this test writes its CSV from the apt lists.
@pytest.mark.slow
@pytest.mark.skipif(not index_files(), reason="no apt package lists (run apt-get update)")
def test_cli_train_text_csv_then_evaluate_and_export(tmp_path):
    csv_path = str(tmp_path / "debian.csv")
    write_debian_packages_csv(csv_path)
    run_dir = str(tmp_path / "run")
    options = json.dumps(TINY)
    assert run_in_process("train", "--recipe=text_debian", f"--data=text:{csv_path}", "--epochs=1",
                          "--limit_train=300", f"--set=model.backbone_options={options}", f"--run_dir={run_dir}",
                          f"--export_dir={tmp_path / 'sm'}", "--set=train.verbose=0") == 0
    assert run_in_process("evaluate", f"--model={run_dir}") == 0
    report = json.load(open(os.path.join(run_dir, "eval", "report.json")))
    assert report["num_examples"] > 1000 and 0 <= report["accuracy"] <= 1
    assert run_in_process("export", f"--run_dir={run_dir}", f"--export_dir={tmp_path / 'sm'}") == 0
    assert sorted(os.listdir(tmp_path / "sm" / "text_debian")) == ["1", "2"]


def test_text_source_needs_a_text_backbone_and_no_augment(tmp_path):
    from fmkeras.recipes import load_recipe
    cfg = apply_overrides(load_recipe("cnn_fashion"), {"data.source": "text:debian", "run_root": str(tmp_path)})
    with pytest.raises(ConfigError, match="`export.tta` augments images"):
        run_training(cfg)
    cfg = apply_overrides(cfg, {"export.tta": None})
    with pytest.raises(ConfigError, match="`data.augment` applies to images only"):
        run_training(cfg)
    cfg = apply_overrides(cfg, {"data.augment.horizontal_flip": False})
    with pytest.raises(ConfigError, match="text sources need a text backbone"):
        run_training(cfg)
    assert not os.listdir(tmp_path)  # nothing written before the config is known to work


@pytest.mark.slow
def test_text_ensemble_trains_members_with_own_seeds_and_serves_their_mean(tmp_path):
    cfg = RunConfig(name="text_ens", run_root=str(tmp_path / "runs"),
                    data=DataConfig(source="text:debian", limit_train=600, limit_test=200, validation_split=0.2),
                    model=ModelConfig(backbone="text_transformer", backbone_options=TINY, head=HeadConfig(),
                                      ensemble=2),
                    text=TextConfig(max_tokens=2000, sequence_length=16, wide="tf_idf", linear_member=True,
                                    linear_weight=0.4),
                    train=TrainConfig(epochs=1, batch_size=64, learning_rate=3e-3, verbose=0),
                    export=ExportConfig(base_dir=str(tmp_path / "saved_models")))
    report = run_training(cfg)
    members = report["ensemble"]["members"]
    assert [m.get("seed") for m in members] == [1337, 1338, None]
    assert members[2]["kind"] == "tfidf_logistic_regression" and members[2]["features"] > 100
    assert report["ensemble"]["weights"] == pytest.approx([0.3, 0.3, 0.4])
    for m in members[:2]:
        assert os.path.isfile(os.path.join(m["run_dir"], "checkpoints", "best.weights.h5"))
        assert os.path.isfile(os.path.join(m["run_dir"], "history.csv"))
    assert 0 <= report["ensemble"]["val_accuracy"] <= 1
    texts = tf.constant(["multiplayer chess game with network play", "ip packet sniffer and firewall tool"])
    model = keras.saving.load_model(os.path.join(report["run_dir"], MODEL_FILE), safe_mode=True)
    a, b, linear = (model.get_layer(f"member_{i}")(texts).numpy() for i in range(3))
    assert np.abs(a - b).max() > 1e-4  # different seeds, different members
    expected = 0.3 * a + 0.3 * b + 0.4 * linear
    np.testing.assert_allclose(model(texts).numpy(), expected, atol=1e-6)
    served = tf.saved_model.load(report["export"]["path"]).signatures["serving_default"]
    np.testing.assert_allclose(served(text=texts)["probabilities"].numpy(), expected, atol=1e-5)


def test_ensemble_is_refused_for_image_sources():
    from fmkeras.tasks import task_for_source
    cfg = RunConfig(data=DataConfig(source="fashion_mnist"), model=ModelConfig(ensemble=3))
    with pytest.raises(ConfigError, match="model.ensemble.*evaluate --ensemble"):
        task_for_source(cfg.data.source).check_config(cfg)
