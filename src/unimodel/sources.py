"""The source of every ``unimodel`` module as it was imported.

A cache key must hash the code that runs, not the file as it is on disk
when the key happens to be computed: ``mkdocs serve`` watches ``src/``, and
a model file edited while a long build trains would otherwise lend its new
key to a run the old code trained. So the package records each of its
modules' source text at the moment Python compiles or loads it, and the
cache hashes that record.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

PACKAGE = __name__.partition(".")[0]
_IMPORTED: dict[str, str] = {}  # module name -> its source text when it was imported


class _RecordingLoader(importlib.machinery.SourceFileLoader):
    """A source loader that keeps the text of what it loads (from the .py file, or a .pyc that matches it)."""

    def get_code(self, fullname):
        _IMPORTED[fullname] = self.get_data(self.path).decode("utf-8")
        return super().get_code(fullname)  # checks a cached .pyc against this same file's size and time


class _RecordingFinder:
    """Finds this package's modules as the path finder does, with a loader that records their source."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if not fullname.startswith(PACKAGE + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _RecordingLoader(fullname, spec.origin)
        return spec


def record_imports() -> None:
    """Record the package's own ``__init__`` and, from now on, every module of it that is imported."""
    package = sys.modules[PACKAGE]
    _IMPORTED.setdefault(PACKAGE, Path(package.__file__).read_text(encoding="utf-8"))
    _IMPORTED.setdefault(__name__, Path(__file__).read_text(encoding="utf-8"))  # imported before the finder
    if not any(isinstance(finder, _RecordingFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RecordingFinder())


def module_source(name: str) -> tuple[str, bool]:
    """The source of module ``name`` and whether it is a package.

    A module of this package is imported first if it is not yet, and its
    source is the text Python loaded; any other module is read from disk.
    """
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        module = importlib.import_module(name)
        if name in _IMPORTED:
            return _IMPORTED[name], hasattr(module, "__path__")
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(name)
    return Path(spec.origin).read_text(encoding="utf-8"), Path(spec.origin).name == "__init__.py"
