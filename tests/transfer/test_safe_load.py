"""fmkeras/transfer/safe_load.py: hostile model files are refused by every loader, the canary never appears."""
import os

import keras
import pytest

from fmkeras.transfer.safe_load import UnsafeModelError, inspect_model_file, load_keras_model
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
    assert entry["attempts"] == 19 and entry["ok"]


def test_cli_evaluate_refuses_with_one_line_error(artifacts, capsys):
    directory, paths = artifacts
    assert run_in_process("evaluate", f"--model={paths['lambda_keras']}") == 2
    assert "fmkeras: error:" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(directory, CANARY))
