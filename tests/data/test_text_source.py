"""fmkeras/data/text_source.py: the text `Source` builder, and the layering it allows (readers never import
each other, so fmkeras.data.text and the Debian readers form no import circle)."""
import os
import subprocess
import sys

import pytest

from fmkeras.data.text_source import labels_to_ids, make_text_source
from fmkeras.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_make_text_source_splits_and_sorts_class_names():
    source = make_text_source("text:toy", ["good", "bad", "fine"], ["pos", "neg", "pos"], ["train", "train", "test"])
    assert source.kind == "text" and source.class_names == ("neg", "pos")
    assert list(source.x_train) == ["good", "bad"] and list(source.y_train) == [1, 0]
    assert list(source.x_test) == ["fine"] and list(source.y_test) == [1]
    assert make_text_source("text:toy", ["a"], ["x"], ["train"]).x_test is None
    assert labels_to_ids(["b", "a"], class_names=("b", "a"))[1].tolist() == [0, 1]
    with pytest.raises(DataError, match="text:empty: no labeled texts found"):
        make_text_source("text:empty", [], [], [])


def test_debian_readers_do_not_import_fmkeras_data_text():
    # A fresh interpreter, with the fmkeras.data package registered without running its __init__ (which
    # imports fmkeras.data.text for the public API): what remains imported is what the readers import.
    script = f"""
import importlib.util, sys
folder = {os.path.join(REPO, "fmkeras", "data")!r}
spec = importlib.util.spec_from_file_location("fmkeras.data", folder + "/__init__.py",
                                              submodule_search_locations=[folder])
sys.modules["fmkeras.data"] = importlib.util.module_from_spec(spec)  # registered, __init__ not run
from fmkeras.data import debian_packages, debian_snapshot
source = debian_snapshot.debian_snapshot_source()  # runs any import done inside the functions too
assert source.name == "text:debian", source.name
print(sorted(m for m in sys.modules if m.startswith("fmkeras.data.")))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = eval(out.stdout.strip().splitlines()[-1])
    assert "fmkeras.data.debian_packages" in loaded and "fmkeras.data.text_source" in loaded
    assert "fmkeras.data.text" not in loaded, loaded


def test_no_import_of_fmkeras_data_text_anywhere_in_the_debian_readers():
    import ast
    for name in ("text_source", "debian_packages", "debian_snapshot"):  # imports inside functions count too
        with open(os.path.join(REPO, "fmkeras", "data", f"{name}.py"), encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert "fmkeras.data.text" not in imported, name
