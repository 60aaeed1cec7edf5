"""fmkeras/evaluate/ensemble.py and `fmkeras evaluate --ensemble`."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from fmkeras.config import ExportConfig
from fmkeras.errors import DataError
from fmkeras.evaluate.ensemble import adapt_input, ensemble_report
from fmkeras.experiment import run_training
from tests.cli.test_cli import run_in_process
from tests.conftest import tiny_config


def test_ensemble_averages_member_probabilities():
    labels = np.array([0, 1, 1, 0])
    a = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.45, 0.55]])  # right on 0, 1; wrong on 2, 3
    b = np.array([[0.6, 0.4], [0.7, 0.3], [0.1, 0.9], [0.9, 0.1]])    # right on 0, 2, 3; wrong on 1
    images = np.arange(4, dtype="float32").reshape(4, 1, 1, 1)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)
    members = [("a", lambda x: a[np.asarray(x).reshape(-1).astype(int)]),
               ("b", lambda x: b[np.asarray(x).reshape(-1).astype(int)])]
    report = ensemble_report(members, dataset, ("x", "y"))
    assert [m["accuracy"] for m in report["members"]] == [0.5, 0.75]
    # mean: [.75 .25] [.55 .45] [.35 .65] [.675 .325] -> right, wrong, right, right
    assert report["ensemble"]["accuracy"] == 0.75 and report["num_examples"] == 4
    with pytest.raises(DataError, match="needs at least two models"):
        ensemble_report(members[:1], dataset, ("x", "y"))
    with pytest.raises(DataError, match="model a predicts 2 classes but the data has 3"):
        ensemble_report(members, dataset, ("x", "y", "z"))


def test_adapt_input_resizes_and_converts_channels():
    seen = []
    predict = adapt_input(lambda x: seen.append(tuple(x.shape)) or np.zeros((len(x), 2)), (32, 32, 3))
    predict(tf.zeros((5, 28, 28, 1)))
    assert seen == [(5, 32, 32, 3)]


@pytest.mark.slow
def test_cli_ensemble_of_a_run_dir_and_a_saved_model_with_other_input_shape(tmp_path, capsys):
    first = run_training(dataclasses.replace(tiny_config(tmp_path / "a"), name="a"))
    base = tiny_config(tmp_path / "b", epochs=2, seed=7)
    # The second member sees 32x32 RGB: the ensemble resizes/converts the 28x28 grayscale test images for it.
    second = run_training(dataclasses.replace(
        base, name="b", data=dataclasses.replace(base.data, image_size=(32, 32), channels=3),
        export=ExportConfig(base_dir=str(tmp_path / "saved"))))
    saved = second["export"]["path"]
    out = tmp_path / "ens"
    assert run_in_process("evaluate", f"--ensemble={first['run_dir']},{saved}", f"--run_dir={out}") == 0
    with open(out / "ensemble_report.json") as fh:
        report = json.load(fh)
    assert report["models"] == [first["run_dir"], saved] and report["num_examples"] == 200
    assert report["members"][0]["accuracy"] == first["test"]["accuracy"]
    assert abs(report["members"][1]["accuracy"] - second["test"]["accuracy"]) <= 0.01
    assert "ensemble of 2: accuracy" in capsys.readouterr().out
    assert os.path.isfile(out / "ensemble_report.json")


def _text_run(tmp_path, name: str, csv_path: str, seed: int, export: bool) -> dict:
    from fmkeras.config import DataConfig, ModelConfig, RunConfig, TextConfig, TrainConfig
    return run_training(RunConfig(
        name=name, run_dir=str(tmp_path / name), data=DataConfig(source=f"text:{csv_path}", validation_split=0.2),
        model=ModelConfig(backbone="text_transformer", backbone_options={
            "size": "tiny", "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32, "dropout": 0.0}),
        text=TextConfig(max_tokens=100, sequence_length=8),
        train=TrainConfig(epochs=2, batch_size=32, learning_rate=3e-3, verbose=0, seed=seed),
        export=ExportConfig(enabled=export, base_dir=str(tmp_path / "saved"))))


@pytest.mark.slow
def test_cli_ensemble_of_text_runs_and_a_text_saved_model(tmp_path, capsys):
    from tests.tune.test_text_search import write_topics_csv
    csv_path = write_topics_csv(str(tmp_path / "topics.csv"), per_class=40, test_per_class=10)
    first = _text_run(tmp_path, "t1", csv_path, 1, export=False)
    second = _text_run(tmp_path, "t2", csv_path, 2, export=True)
    out = tmp_path / "ens"
    assert run_in_process("evaluate", f"--ensemble={first['run_dir']},{second['export']['path']}",
                          f"--run_dir={out}") == 0
    report = json.load(open(out / "ensemble_report.json"))
    assert report["num_examples"] == 30
    assert [m["accuracy"] for m in report["members"]] == pytest.approx(
        [first["test"]["accuracy"], second["test"]["accuracy"]], abs=1e-4)
    assert "(30 texts)" in capsys.readouterr().out
    # An image model cannot join a text ensemble: the error names it.
    image = run_training(dataclasses.replace(tiny_config(tmp_path / "img"), name="img"))
    with pytest.raises(DataError, match=f"model {image['run_dir']} takes images but the data .*holds texts"):
        from fmkeras.experiment.finished_runs import evaluate_ensemble
        evaluate_ensemble([first["run_dir"], image["run_dir"]], out_dir=str(out))
