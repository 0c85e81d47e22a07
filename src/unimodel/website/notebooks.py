"""Execute the site's notebooks at build time, cached like the figures.

The cache key hashes the notebook itself and the source of every
``unimodel`` module its code cells import (transitively), so an executed
notebook is never stale with respect to ``src/``. Execution fails loudly
on the first error (``allow_errors=False``): a broken notebook breaks the build.

Budgets: a notebook's cell tagged ``parameters`` (papermill's convention)
sets its budgets for a reader, e.g. ``EPOCHS = 300``. Under the quick
profile the cell ``metadata.unimodel.quick`` of the notebook gives (as
``{"EPOCHS": 3}``) is executed right after it, tagged
``injected-parameters``, so a quick build runs the notebook in seconds and
says, in the executed copy, what it changed.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from unimodel import cache

log = logging.getLogger(__name__)
TIMEOUT_S = 600  # per cell


def imported_modules(notebook) -> tuple[str, ...]:
    """The unimodel modules the notebook's code cells import."""
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    return tuple(sorted(cache.unimodel_imports("__main__", code, is_package=False)))


def _read(path: Path) -> tuple[object, str]:
    """The notebook at ``path`` and its cache key."""
    import nbformat

    source = path.read_text(encoding="utf-8")
    notebook = nbformat.reads(source, as_version=4)
    modules = imported_modules(notebook) or ("unimodel",)
    notebook = with_profile_budgets(notebook, path)
    return notebook, cache.artifact_key(modules, "notebook", nbformat.writes(notebook))


def with_profile_budgets(notebook, path: Path):
    """``notebook`` with the quick profile's budgets injected after its ``parameters`` cell (under that profile)."""
    import nbformat

    from unimodel.figures.registry import budget

    quick = notebook.metadata.get("unimodel", {}).get("quick")
    if not quick or budget(full=True, quick=False):
        return notebook
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.get("metadata", {}).get("tags", ())]
    if len(tagged) != 1:
        raise ValueError(f"{path}: metadata.unimodel.quick needs exactly one cell tagged 'parameters', found {len(tagged)}")
    source = "# injected by the quick profile (UNIMODEL_PROFILE=quick)\n" + "\n".join(f"{name} = {value!r}" for name, value in quick.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    cell.id = "injected-parameters"  # not the random id nbformat gives a new cell: the key must not change from build to build
    notebook.cells.insert(tagged[0] + 1, cell)
    return notebook


def notebook_path(path: str | Path) -> Path:
    """Where the executed copy of the notebook at ``path`` is cached, executed or not."""
    path = Path(path)
    return cache.artifact_path(f"notebooks/{_read(path)[1]}", path.stem, ".ipynb")


def executed_notebook(path: str | Path) -> Path:
    """A cached copy of the notebook at ``path`` with every cell executed."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    notebook, key = _read(path)

    def produce(tmp: str) -> None:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as workdir:  # files the notebook writes stay out of docs/
            client = NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3", allow_errors=False, resources={"metadata": {"path": workdir}})
            # the kernel gets this process's threads: left to PyTorch's default, its threads and the kernel's
            # own spin against each other (the VAE notebook trained 60x slower on 2 cores)
            client.execute(env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
        nbformat.write(notebook, tmp)
        log.info("unimodel: executed %s in %.1f s", path.name, time.perf_counter() - started)

    return cache.cached_path(f"notebooks/{key}", path.stem, ".ipynb", produce)  # keeps the file name for downloads
