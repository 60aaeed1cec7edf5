"""Executes the notebooks in notebooks/ with nbclient and saves them with their outputs.

Small size by default (`FMKERAS_NOTEBOOK_SMALL=1`: ~1,000 images, 1-2 epochs), which is what CI
and `make notebooks` run and what the committed outputs show; `--full` runs the full recipes.
Each notebook runs in a fresh kernel of this Python, with `--workdir` as its working directory
(runs/ and saved_models/ go there) and this checkout first on PYTHONPATH.

Run: python notebooks/run.py [NOTEBOOK.ipynb ...] [--full] [--workdir DIR] [--output-dir DIR]
"""
from __future__ import annotations

import argparse
import glob
import os
import resource
import sys
import time

import nbformat
from nbclient import NotebookClient

NOTEBOOK_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(NOTEBOOK_DIR)
SMALL_ENV = "FMKERAS_NOTEBOOK_SMALL"
# TensorFlow's C++ start-up lines (absl logging ignores TF_CPP_MIN_LOG_LEVEL for them) and the
# SavedModel writer's asset notes say nothing about the notebook; they are dropped from saved outputs.
NOISE_PREFIXES = ("WARNING: All log messages before absl", "I0000 ", "E0000 ", "W0000 ",
                  "To enable the following instructions", "INFO:tensorflow:Assets written")


def drop_tensorflow_noise(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Removes TensorFlow start-up/log lines from stream outputs (other lines are kept as they are)."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = "".join(line for line in output.text.splitlines(keepends=True)
                                      if not line.startswith(NOISE_PREFIXES))
                if not output.text:
                    continue
            kept.append(output)
        cell.outputs = kept
    return notebook


def list_notebooks(directory: str = NOTEBOOK_DIR) -> list:
    """The numbered notebooks (NN_name.ipynb) in `directory`, in order."""
    return sorted(glob.glob(os.path.join(directory, "[0-9][0-9]_*.ipynb")))


def execute_notebook(path: str, output_path: str = None, small: bool = True, workdir: str = REPO_ROOT,
                     timeout: int = 1200) -> nbformat.NotebookNode:
    """Runs every cell of `path` top to bottom (an error in any cell raises) and writes the result
    with outputs to `output_path` (default: over `path`)."""
    os.environ[SMALL_ENV] = "1" if small else "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.makedirs(workdir, exist_ok=True)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": workdir}})
    client.execute()
    nbformat.write(drop_tensorflow_noise(notebook), output_path or path)
    return notebook


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--full", action="store_true", help="full-size runs instead of FMKERAS_NOTEBOOK_SMALL=1")
    parser.add_argument("--workdir", default=REPO_ROOT, help="working directory of the notebooks' kernels")
    parser.add_argument("--output-dir", default=None, help="write executed copies here instead of in place")
    args = parser.parse_args(argv)
    for path in args.notebooks or list_notebooks():
        out = os.path.join(args.output_dir, os.path.basename(path)) if args.output_dir else path
        if args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
        start, cpu = time.perf_counter(), _children_cpu_seconds()
        execute_notebook(path, out, small=not args.full, workdir=args.workdir)
        # CPU seconds of the kernel (and what it started and waited for) say more than wall time on a shared machine.
        print(f"executed {os.path.basename(path)} in {time.perf_counter() - start:.0f} s "
              f"({_children_cpu_seconds() - cpu:.0f} CPU s) -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
