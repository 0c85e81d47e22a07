"""Execute the site's notebooks at build time, cached like the figures.

The cache key hashes the notebook itself and the source of every
``unimodel`` module its code cells import (transitively), so an executed
notebook is never stale with respect to ``src/``. Execution fails loudly
on the first error (``allow_errors=False``): a broken notebook breaks the build.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

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
    return notebook, cache.artifact_key(modules, "notebook", source)


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
            NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3", allow_errors=False, resources={"metadata": {"path": workdir}}).execute()
        nbformat.write(notebook, tmp)
        log.info("unimodel: executed %s in %.1f s", path.name, time.perf_counter() - started)

    return cache.cached_path(f"notebooks/{key}", path.stem, ".ipynb", produce)  # keeps the file name for downloads
