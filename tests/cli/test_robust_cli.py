"""`fmkeras evaluate --fgsm_epsilon`: robust accuracy of a .keras model, written to robust.json."""
import json

from fmkeras.config import ModelConfig
from fmkeras.transfer import build_classifier
from tests.cli.test_cli import run_in_process


def test_evaluate_reports_fgsm_robust_accuracy(tmp_path, capsys, fashion_npz, monkeypatch):
    model = build_classifier(ModelConfig(backbone="cnn", backbone_options={"filters": (4,)}), (28, 28, 1), 10)
    model.save(tmp_path / "m.keras")
    monkeypatch.chdir(tmp_path)
    assert run_in_process("evaluate", f"--model={tmp_path / 'm.keras'}", f"--data=npz:{fashion_npz}",
                          "--fgsm_epsilon=0.05,0.2") == 0
    out = capsys.readouterr().out
    assert "FGSM epsilon 0.05: robust accuracy" in out and "FGSM epsilon 0.2" in out
    results = json.loads((tmp_path / "runs" / "evaluate" / "eval" / "robust.json").read_text())["results"]
    assert [r["epsilon"] for r in results] == [0.05, 0.2] and results[0]["num_examples"] == 200
    assert all(r["robust_accuracy"] <= r["clean_accuracy"] + 0.05 for r in results)


def test_fgsm_epsilon_needs_a_keras_model(tmp_path, capsys):
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    assert run_in_process("evaluate", f"--model={tmp_path / 'sm'}", "--data=fashion_mnist",
                          "--fgsm_epsilon=0.1") == 2
    assert "--fgsm_epsilon needs gradients" in capsys.readouterr().err
