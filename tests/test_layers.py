"""The package's import graph follows the data flow: no import circles, nothing importing a module of a later
stage, and only fmkeras/tasks decides whether something is an image or a text."""
from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "fmkeras"
# Each folder may import only the folders of earlier stages (and itself): data -> backbones -> transfer -> train
# -> evaluate -> export -> tasks -> experiment -> tune / pretrain / predict / serve -> cli.
STAGES = [{"errors", "atomic_files", "hardware", "config"}, {"model_files", "backbones", "data", "recipes"}, {"train"},
          {"transfer"}, {"evaluate"}, {"export"}, {"tasks"}, {"experiment"}, {"tune", "pretrain", "predict", "serve"},
          {"cli", "__main__"}]


def _modules() -> dict:
    """module name -> set of fmkeras modules it imports (anywhere in the file, function bodies included)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("fmkeras",) + path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        imports = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fmkeras"):
                imports.add(node.module)
            elif isinstance(node, ast.Import):
                imports.update(a.name for a in node.names if a.name.startswith("fmkeras"))
        graph[name] = imports
    return graph


def _stage(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    return next(i for i, names in enumerate(STAGES) if part in names) if part else len(STAGES)


def test_no_module_imports_a_later_stage():
    wrong = [f"{m} -> {i}" for m, imports in _modules().items() for i in imports
             if i != "fmkeras" and _stage(i) > _stage(m)]
    assert wrong == []


def _related(a: str, b: str) -> bool:
    """A package and its own submodules: the package's face hands their names on (not a circle)."""
    return a.startswith(b + ".") or b.startswith(a + ".")


def test_no_import_circles():
    graph = {m: {i for i in imports if i in _modules_cache and not _related(m, i)}
             for m, imports in _modules_cache.items()}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))
    for node in graph:
        if node not in index:
            visit(node)
    assert circles == []


_modules_cache = _modules()


def test_only_tasks_decide_the_modality():
    markers = ("is_text_source(", 'dtype == "string"', '"serve_pixels" not in', "image_shape == ()",
               'kind == "text"', "is_multilabel_source(", "MULTI_LABEL_OUTPUT", '"multi_label"')
    # The decision, the source registries, the head that names its output and the export that records it.
    allowed = {"fmkeras/tasks/__init__.py", "fmkeras/data/text.py", "fmkeras/data/multilabel_csv.py",
               "fmkeras/transfer/heads.py", "fmkeras/tasks/multilabel.py"}
    found = [f"{path.relative_to(PACKAGE.parent)}: {marker}" for path in PACKAGE.rglob("*.py")
             for marker in markers if marker in path.read_text()
             and str(path.relative_to(PACKAGE.parent)) not in allowed]
    assert found == []
