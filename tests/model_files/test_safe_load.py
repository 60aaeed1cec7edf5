"""fmkeras/model_files/safe_load.py: hostile model files are refused by every loader, the canary never appears."""
import os

import keras
import pytest

from fmkeras.model_files.safe_load import UnsafeModelError, inspect_model_file, load_keras_model
from reliability import hostile_artifacts
from reliability.hostile_artifacts import CANARY, build_artifacts
from tests.cli.test_cli import run_in_process


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("hostile"))
    return directory, build_artifacts(directory)


def test_the_lambda_file_really_is_hostile(artifacts, tmp_path):
    # Proof the fixture is a real payload: Keras with safe mode OFF runs it and creates the canary.
    directory, paths = artifacts
    keras.saving.load_model(paths["lambda_keras"], safe_mode=False)
    assert os.path.exists(os.path.join(directory, CANARY))
    os.remove(os.path.join(directory, CANARY))


@pytest.mark.parametrize("name,message", [
    ("lambda_keras", "refused Lambda at config.config.layers"),
    ("lambda_h5", "refused Lambda"),
    ("module_import", "refused import of module 'os'"),
    ("unsafe_gadget", "refused function reference keras.config.enable_unsafe_deserialization"),
    ("path_traversal", "path traversal"),
    ("zip_bomb", "zip bomb"),
    ("deep_nesting", "nested too deeply"),
    ("vocabulary_path", "refused StringLookup .* its vocabulary is the path"),
    ("vocabulary_url", "refused TextVectorization .* 'gs://attacker-bucket/vocab.txt'"),
    ("tfsm_layer", "refused TFSMLayer"),
    ("torch_wrapper", "refused TorchModuleWrapper"),
    ("registered_name_swap", "refused registered_name 'keras_hub>SomethingElse' for keras.layers.Dense"),
    ("npz_weights", "unexpected archive member 'model.weights.npz'"),
])
def test_hostile_file_is_refused_before_loading(artifacts, name, message):
    directory, paths = artifacts
    with pytest.raises(UnsafeModelError, match=message):
        inspect_model_file(paths[name])
    assert not os.path.exists(os.path.join(directory, CANARY))


def test_benign_model_loads(artifacts):
    _, paths = artifacts
    assert load_keras_model(paths["benign"]).output_shape == (None, 2)


def test_every_loader_refuses_every_file(tmp_path):
    entry = hostile_artifacts.run(str(tmp_path / "scenario"))
    assert entry["accepted"] == [] and entry["crashes"] == 0 and not entry["canary_created"], entry
    assert entry["attempts"] == 37 and entry["ok"]


def test_cli_evaluate_refuses_with_one_line_error(artifacts, capsys):
    directory, paths = artifacts
    assert run_in_process("evaluate", f"--model={paths['lambda_keras']}") == 2
    assert "fmkeras: error:" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(directory, CANARY))


def test_keras_without_the_2025_safe_mode_fixes_is_refused():
    from fmkeras.model_files.safe_load import check_keras_version
    check_keras_version()  # the installed one (setup.cfg: keras>=3.12)
    check_keras_version("3.12.0")
    with pytest.raises(UnsafeModelError, match=r"Keras 3.11.3 has known safe_mode bypasses .*-12058.*>= 3.12"):
        check_keras_version("3.11.3")


def test_the_vocabulary_file_would_really_be_read_without_the_inspector(tmp_path):
    # Proof the refused config is a real file read: Keras builds the layer from the path it names.
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("secret\nwords\n")
    layer = keras.layers.StringLookup(vocabulary=str(vocab))
    assert layer.get_vocabulary()[1:] == ["secret", "words"]


def test_cli_distill_loads_its_teacher_through_the_safe_loader(artifacts, tmp_path, capsys):
    directory, paths = artifacts
    assert run_in_process("distill", f"--teacher={paths['lambda_keras']}", "--student=cnn") == 2
    assert "refused Lambda" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(directory, CANARY))
    # A teacher modified after training no longer matches its .sha256 sidecar: refused before parsing.
    teacher = str(tmp_path / "teacher.keras")
    with open(paths["benign"], "rb") as src, open(teacher, "wb") as dst:
        dst.write(src.read())
    from fmkeras.model_files.weight_hashes import write_sha256_sidecar
    write_sha256_sidecar(teacher)
    with open(teacher, "ab") as fh:
        fh.write(b"tampered")
    assert run_in_process("distill", f"--teacher={teacher}", "--student=cnn") == 2
    assert "does not match the known hash" in capsys.readouterr().err
