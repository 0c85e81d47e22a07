"""A content-addressed cache for everything the site computes.

An artifact (a trained run, a figure, a table of numbers) is stored under a
key that hashes what produced it: the source of the module that computes
it and of every ``unimodel`` module that module imports, transitively, the
arguments, and the versions of the numerical libraries. Change any of
those and the key changes, so the artifact is recomputed; change nothing
and it is read back. Files are written to a temporary name and renamed, so
an interrupted build never leaves a half-written artifact behind.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from unimodel.checkpoint import atomic_write

LIBRARIES = ("torch", "numpy", "scikit-learn", "matplotlib")


def cache_dir() -> Path:
    """``$UNIMODEL_CACHE`` if set, else ``.cache`` in the working directory."""
    return Path(os.environ.get("UNIMODEL_CACHE", ".cache"))


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(name)
    return Path(spec.origin)


def unimodel_imports(name: str, source: str, is_package: bool) -> set[str]:
    """Names of the ``unimodel`` modules that ``source`` imports (absolute or relative)."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module.split(".")[0] == "unimodel" and _is_module(module)}


def _is_module(name: str) -> bool:
    """False for names that are attributes of a module (``unimodel.data.Split``), not modules."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@lru_cache(maxsize=None)
def code_fingerprint(module: str) -> str:
    """Hash of the source of ``module`` and every ``unimodel`` module it imports, transitively."""
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_path(name)
        source = path.read_text(encoding="utf-8")
        seen[name] = source
        todo.extend(unimodel_imports(name, source, path.name == "__init__.py"))
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + seen[name].encode() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=None)
def library_versions() -> str:
    return ",".join(f"{lib}={metadata.version(lib)}" for lib in LIBRARIES)


def artifact_key(modules: str | tuple[str, ...], *args: object) -> str:
    """The cache key of an artifact computed by the code of ``modules`` from ``args`` (JSON-able)."""
    modules = (modules,) if isinstance(modules, str) else modules
    code = [code_fingerprint(module) for module in modules]
    payload = json.dumps([code, library_versions(), args], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def cached_path(kind: str, key: str, suffix: str, produce: Callable[[str], None]) -> Path:
    """Path of the artifact ``kind/key+suffix``; ``produce(tmp_path)`` writes it on a miss."""
    path = cache_dir() / kind / f"{key}{suffix}"
    if not path.exists():
        atomic_write(path, produce)
    return path


def cached_json(kind: str, key: str, compute: Callable[[], dict]) -> dict:
    """A JSON-able dict computed once per key."""
    def produce(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(compute(), indent=1, sort_keys=True), encoding="utf-8")

    return json.loads(cached_path(kind, key, ".json", produce).read_text(encoding="utf-8"))
