"""fmkeras/train/distill.py + `fmkeras distill`: loss by hand, teacher frozen, report written."""
import json

import keras
import numpy as np
import pytest

from fmkeras.config import ModelConfig
from fmkeras.transfer import build_classifier
from fmkeras.train.distill import Distiller, distillation_loss
from tests.cli.test_cli import run_in_process


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_distillation_loss_is_t2_kl_of_softened_outputs():
    teacher_logits = np.array([[2.0, 0.5, -1.0]])
    student_logits = np.array([[0.3, 0.2, 0.1]])
    t = 4.0
    pt, ps = _softmax(teacher_logits / t), _softmax(student_logits / t)
    expected = t ** 2 * float((pt * np.log(pt / ps)).sum())
    got = distillation_loss(_softmax(teacher_logits).astype(np.float32), _softmax(student_logits).astype(np.float32), t)
    assert float(got[0]) == pytest.approx(expected, rel=1e-4)


def test_distiller_trains_student_only(fashion):
    x, y = fashion.x_train[:128].astype("float32"), fashion.y_train[:128]
    small = ModelConfig(backbone="cnn", backbone_options={"filters": (4,)})
    teacher = build_classifier(ModelConfig(backbone="cnn", backbone_options={"filters": (8,)}), (28, 28, 1), 10)
    student = build_classifier(small, (28, 28, 1), 10)
    before_teacher, before_student = teacher.get_weights(), student.get_weights()
    distiller = Distiller(student, teacher)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"], alpha=0.5, temperature=2.0)
    history = distiller.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    for a, b in zip(before_teacher, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, b) for a, b in zip(before_student, student.get_weights()))


def test_distill_cli_reports_teacher_scratch_and_distilled(tmp_path, capsys, fashion_npz):
    teacher = build_classifier(ModelConfig(backbone="cnn", backbone_options={"filters": (8, 16)}), (28, 28, 1), 10)
    teacher.compile("adam", "sparse_categorical_crossentropy")
    data = np.load(fashion_npz)
    teacher.fit(data["x_train"].astype("float32"), data["y_train"], epochs=1, verbose=0)
    teacher.save(tmp_path / "teacher.keras")
    assert run_in_process("distill", f"--teacher={tmp_path / 'teacher.keras'}", "--student=cnn",
                          f"--data=npz:{fashion_npz}", "--set=model.backbone_options={filters: [4]}",
                          "--set=model.head.dense_units=[]", "--set=model.head.dropout=0", "--set=model.head.pooling=avg",
                          "--epochs=1",
                          "--set=train.verbose=0", "--set=train.warmup_steps=0", "--set=distill.temperature=3",
                          f"--set=run_root={tmp_path / 'runs'}") == 0
    out = capsys.readouterr().out
    report = json.loads(out[: out.rindex("}") + 1])
    assert report["teacher"]["params"] > report["student_distilled"]["params"] == report["student_scratch"]["params"]
    for key in ("teacher", "student_scratch", "student_distilled"):
        assert 0.0 <= report[key]["accuracy"] <= 1.0
    path = out.split("report: ")[1].strip()
    saved = json.loads(open(path).read())
    assert saved["distill"] == {"temperature": 3.0, "alpha": 0.1}
    keras.saving.load_model(saved["student_distilled"]["model"], safe_mode=True)
