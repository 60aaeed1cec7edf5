"""`fmkeras predict`: CSV to stdout, JSON to a file written atomically, bad files as rows, user errors exit 2."""
import csv
import io
import json
import os

import pytest

from fmkeras.config import ModelConfig, RunConfig, to_dict
from fmkeras.transfer import build_classifier
from tests.cli.test_cli import fmkeras, run_in_process
from tests.predict.test_predictors import write_images

NAMES = ["top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as training leaves it: model.keras, config.json, metrics.json (untrained small CNN)."""
    path = tmp_path_factory.mktemp("run")
    build_classifier(ModelConfig(backbone_options={"filters": (4, 8)}), (28, 28, 1), 10).save(path / "model.keras")
    (path / "config.json").write_text(json.dumps(to_dict(RunConfig())))
    (path / "metrics.json").write_text(json.dumps({"class_names": NAMES, "image_shape": [28, 28, 1]}))
    return str(path)


def test_json_to_file_end_to_end(tmp_path, run_dir, fashion):
    images = write_images(tmp_path / "photos" / "sub", fashion, count=3)
    (tmp_path / "photos" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "predictions.json"
    result = fmkeras("predict", f"--model={run_dir}", "--format=json", f"--out={out}", "--top_k=2",
                     str(tmp_path / "photos"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "" and "predicted 3 images, 1 with errors" in result.stderr
    rows = json.loads(out.read_text())
    assert [row["path"] for row in rows] == [str(tmp_path / "photos" / "broken.png"), *images]
    assert rows[0]["top_k"] == [] and rows[0]["error"].startswith(("cannot decode", "unreadable image header"))
    for row in rows[1:]:
        assert row["error"] is None and len(row["top_k"]) == 2
        assert {t["label"] for t in row["top_k"]} <= set(NAMES) and row["top_k"][0]["score"] >= row["top_k"][1]["score"]
    assert sorted(os.listdir(tmp_path)) == ["photos", "predictions.json"]  # no temp file left behind


def test_csv_to_stdout(tmp_path, run_dir, fashion, capsys):
    images = write_images(tmp_path / "images", fashion, count=2)
    assert run_in_process("predict", f"--model={run_dir}", *images, "--top_k=3") == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == ["path", "label1", "score1", "label2", "score2", "label3", "score3", "error"]
    assert [row[0] for row in table[1:]] == images
    assert all(row[1] in NAMES and 0 < float(row[2]) <= 1 and row[7] == "" for row in table[1:])


@pytest.mark.parametrize("args,message", [
    (["--model=/no/such/run"], "is not a run directory, a SavedModel, a .keras file or preset:NAME"),
    (["--model=preset:nope"], "presets with a classifier top: preset:efficientnet_lite0"),
    ([], "predict needs --model="),
    (["--model=preset:efficientnet_lite0", "--format=tflite"], "predict --format must be one of csv, json"),
    (["--model=preset:efficientnet_lite0", "--top_k=0"], "--top_k must be >= 1"),
    (["--model=preset:efficientnet_lite0", "--batch_size=0"], "--batch_size must be >= 1"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    (tmp_path / "a.png").write_bytes(b"")
    assert run_in_process("predict", *args, str(tmp_path / "a.png")) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("fmkeras: error:")]
    assert len(lines) == 1 and message in lines[0], lines


def test_no_paths_or_no_images_exit_2(tmp_path, capsys, run_dir):
    assert run_in_process("predict", f"--model={run_dir}") == 2
    assert "predict needs image files or folders" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_in_process("predict", f"--model={run_dir}", str(tmp_path / "empty")) == 2
    assert "no image files (.jpg, .jpeg, .png, .gif, .bmp, .webp) under" in capsys.readouterr().err


def test_explain_writes_a_gradcam_overlay_per_predicted_image(tmp_path, run_dir, fashion, capsys):
    images = write_images(tmp_path / "images", fashion, count=2)
    (tmp_path / "images" / "broken.png").write_bytes(b"not an image")
    out, explain = tmp_path / "rows.json", tmp_path / "explain"
    assert run_in_process("predict", f"--model={run_dir}", "--format=json", f"--out={out}",
                          f"--explain={explain}", str(tmp_path / "images")) == 0
    rows = {row["path"]: row for row in json.loads(out.read_text())}
    for path in images:
        overlay = rows[path]["explanation"]
        assert os.path.dirname(overlay) == str(explain) and open(overlay, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "explanation" not in rows[str(tmp_path / "images" / "broken.png")]  # no prediction, no overlay
    assert sorted(os.listdir(explain)) == sorted(os.path.basename(rows[p]["explanation"]) for p in images)
    # A preset has no classifier "backbone" layer to take gradients at: one clear line, exit 2.
    capsys.readouterr()
    assert run_in_process("predict", "--model=preset:efficientnet_lite0", f"--explain={explain}", images[0]) == 2
    assert "--explain: Grad-CAM needs a layer named 'backbone'" in capsys.readouterr().err
