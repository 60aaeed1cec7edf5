"""notebooks/: every numbered notebook executes top to bottom at the small size and shows its plots."""
import importlib.util
import os

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("notebook_runner", os.path.join(ROOT, "notebooks", "run.py"))
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)
NOTEBOOKS = runner.list_notebooks()


def test_notebooks_are_found_and_saved_with_outputs():
    names = [os.path.basename(p) for p in NOTEBOOKS]
    assert names == ["01_quickstart.ipynb", "02_transfer.ipynb", "03_tune.ipynb", "04_serve.ipynb",
                     "05_pretrain.ipynb", "06_photos.ipynb"], names
    for path in NOTEBOOKS:  # committed with outputs, so GitHub shows the plots
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert all(c.execution_count for c in cells), f"{path} has unexecuted cells: run `make notebooks`"
        assert any("image/png" in o.get("data", {}) for c in cells for o in c.outputs), f"{path} shows no plot"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes_at_small_size(path, tmp_path):
    out = str(tmp_path / os.path.basename(path))
    notebook = runner.execute_notebook(path, out, small=True, workdir=str(tmp_path / "work"))
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert os.path.isfile(out)
