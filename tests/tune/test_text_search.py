"""fmkeras tune on text sources: trials train one text classifier each; the best configuration is
retrained (with its ensemble and linear member) on the search's train+val texts and exported."""
from __future__ import annotations

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from fmkeras.config import TuneRunConfig, from_dict, validate
from fmkeras.data.text import load_text_source
from fmkeras.data.text_pipeline import build_text_datasets
from fmkeras.errors import ConfigError
from fmkeras.experiment import MODEL_FILE
from fmkeras.tasks import task_for_source
from fmkeras.tune import TextHyperModel, hypermodel_for
from fmkeras.tune.retrain import train_plus_val
from tests.cli.test_cli import run_in_process

TINY = {"size": "tiny", "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32, "dropout": 0.0}
TOPICS = {"astronomy": "star galaxy orbit telescope planet comet nebula",
          "cooking": "recipe oven flour butter simmer bake sauce",
          "music": "guitar chord melody tempo drum rhythm piano"}
FILLER = "the a tool for and with of small new fast simple".split()


def write_topics_csv(path: str, per_class: int = 120, test_per_class: int = 30, seed: int = 0) -> str:
    """Texts of 3 topics: 3 topic words among 5 filler words; the last `test_per_class` of each are test."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label", "split"])
        for label, words in TOPICS.items():
            for i in range(per_class + test_per_class):
                tokens = list(rng.choice(words.split(), 3)) + list(rng.choice(FILLER, 5))
                rng.shuffle(tokens)
                writer.writerow([" ".join(tokens), label, "test" if i >= per_class else "train"])
    return path


@pytest.mark.slow
def test_cli_text_search_retrains_best_with_its_ensemble_and_exports_a_string_model(tmp_path):
    data = write_topics_csv(str(tmp_path / "topics.csv"))
    space = {"train.learning_rate": [3e-3, 1e-2], "text.sequence_length": [8, 12]}
    out = tmp_path / "tune" / "text_debian"
    assert run_in_process(
        "tune", "--recipe=text_debian", f"--data=text:{data}", "--algorithm=random", "--max_trials=2",
        "--limit_train=200", f"--tune_dir={tmp_path / 'tune'}", f"--export_dir={tmp_path / 'sm'}",
        f"--set=model.backbone_options={json.dumps(TINY)}", "--set=train.epochs=3", "--set=train.verbose=0",
        "--set=train.warmup_steps=0", "--set=model.ensemble=2", "--set=text.linear_l2=[1e-6,1e-1]",
        f"--set=tune.space={json.dumps(space)}") == 0
    summary = json.load(open(out / "summary.json"))
    assert summary["num_completed"] == summary["num_trials"] == 2
    for trial in summary["trials"]:
        run = out / f"trial_{trial['trial_id']}" / "run"
        assert len(open(run / "history.csv").read().splitlines()) == 1 + 3  # one classifier, 3 epochs
        assert not (run / "members").exists()  # trials do not train the ensemble
    best = summary["best"]["values"]
    retrained = summary["retrained"]
    # The search's 200 training + 20 validation texts (text_debian: validation_split 0.1), no validation.
    assert retrained["num_train"] == 220 and retrained["num_val"] == 0
    assert retrained["test"]["accuracy"] >= 0.9  # 3 topics with their own words
    best_cfg = json.load(open(out / "best" / "config.json"))
    assert best_cfg["train"]["learning_rate"] == best["train.learning_rate"]
    assert best_cfg["text"]["sequence_length"] == best["text.sequence_length"]
    # The linear member's L2 was picked on the search's validation split before it was merged away.
    assert best_cfg["text"]["linear_l2"] in ([1e-6], [1e-1])
    members = retrained["ensemble"]["members"]
    assert [m["kind"] for m in members] == ["text_transformer", "text_transformer", "tfidf_logistic_regression"]
    assert members[-1]["l2"] == best_cfg["text"]["linear_l2"][0]
    # No validation split in the retrain: no validation score is claimed for its members.
    assert [m["best_val_accuracy"] for m in members[:2]] == [None, None]
    assert all(0 <= m["final_train_accuracy"] <= 1 for m in members[:2])
    texts = tf.constant(["comet orbit near the planet", "bake the flour with butter"])
    model = keras.saving.load_model(os.path.join(retrained["run_dir"], MODEL_FILE), safe_mode=True)
    served = tf.saved_model.load(retrained["export"]["path"]).signatures["serving_default"]
    np.testing.assert_allclose(served(text=texts)["probabilities"].numpy(), model(texts).numpy(), atol=1e-5)
    assert os.path.isfile(os.path.join(retrained["run_dir"], MODEL_FILE + ".sha256"))


def _text_config(tmp_path, data: str, **tune) -> TuneRunConfig:
    return validate(from_dict(TuneRunConfig, {
        "name": "text_search",
        "data": {"source": f"text:{data}", "validation_split": 0.2},
        "model": {"backbone": "text_transformer", "backbone_options": TINY},
        "text": {"max_tokens": 200, "sequence_length": 8},
        "train": {"epochs": 1, "batch_size": 32, "verbose": 0},
        "export": {"base_dir": str(tmp_path / "sm")},
        "tune": {"directory": str(tmp_path / "tune"), "space": {"train.learning_rate": [3e-3]}, **tune}}))


def test_text_hypermodel_is_chosen_for_text_sources_and_refuses_searching_the_ensemble(tmp_path):
    cfg = _text_config(tmp_path, write_topics_csv(str(tmp_path / "topics.csv"), per_class=20, test_per_class=5))
    source = load_text_source(cfg.data, cfg.text)
    task = task_for_source(cfg.data.source)
    assert isinstance(hypermodel_for(cfg, source, task), TextHyperModel)
    bad = _text_config(tmp_path, cfg.data.source[len("text:"):],
                       space={"model.ensemble": [1, 3], "train.learning_rate": [3e-3]})
    with pytest.raises(ConfigError, match=r"model.ensemble cannot be searched.*Remove tune.space.model.ensemble"):
        hypermodel_for(bad, source, task)


def test_text_train_plus_val_is_the_union_of_the_search_splits(tmp_path):
    cfg = _text_config(tmp_path, write_topics_csv(str(tmp_path / "topics.csv"), per_class=40, test_per_class=5))
    source = load_text_source(cfg.data, cfg.text)
    search = build_text_datasets(source, cfg.data, batch_size=16)
    merged = train_plus_val(source, cfg.data)
    assert sorted(merged.x_train) == sorted([*search.train_texts, *search.val_texts])
    assert len(merged.y_train) == search.num_train + search.num_val == 120


@pytest.mark.slow
def test_text_hyperband_trials_train_their_budget_and_continue_from_earlier_trials(tmp_path):
    from fmkeras.tune import run_search
    cfg = _text_config(tmp_path, write_topics_csv(str(tmp_path / "topics.csv"), per_class=60, test_per_class=10),
                       algorithm="hyperband", max_epochs=2, hyperband_factor=2, retrain=False,
                       space={"train.learning_rate": [3e-3, 1e-2], "text.sequence_length": [6, 10]})
    summary = run_search(cfg)
    assert summary["num_completed"] == summary["num_trials"] >= 3 and "retrained" not in summary
    continued = [t for t in summary["trials"] if t["values"]["tuner/initial_epoch"] > 0]
    assert continued
    for trial in summary["trials"]:
        values = trial["values"]
        history = tmp_path / "tune" / "text_search" / f"trial_{trial['trial_id']}" / "run" / "history.csv"
        epochs = len(open(history).read().splitlines()) - 1
        assert epochs == values["tuner/epochs"] - values["tuner/initial_epoch"]
