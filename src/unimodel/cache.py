"""A content-addressed cache for everything the site computes.

An artifact (a trained run, a figure, a table of numbers) is stored under a
key that hashes what produced it: the code of the module that computes it
and of every ``unimodel`` module that module imports, transitively, the
arguments, and the versions of the numerical libraries. Change any of
those and the key changes, so the artifact is recomputed; change nothing
and it is read back.

The code is hashed by what it does, not how it is written: its syntax tree
without docstrings (comments and blank lines never reach the tree), taken
from the source Python imported (``unimodel.sources``), so the key names
the code that runs even when a file is edited during a build.

Files are written to a temporary name and renamed, so an interrupted build
never leaves a half-written artifact behind; a lock per artifact lets
several processes (or cluster workers sharing the folder) build at once,
each artifact computed by one of them only.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from functools import cache
from importlib import metadata
from pathlib import Path

from unimodel.checkpoint import atomic_write
from unimodel.sources import module_source

LIBRARIES = ("torch", "numpy", "scikit-learn", "matplotlib")


def cache_dir() -> Path:
    """``$UNIMODEL_CACHE`` if set, else ``.cache`` in the working directory."""
    return Path(os.environ.get("UNIMODEL_CACHE", ".cache"))


class CacheUnusable(ValueError):
    """The cache folder cannot be made or written."""


def writable_cache_dir() -> Path:
    """``cache_dir()``, made if missing; refused in one sentence if it is not a folder this process can write."""
    folder = cache_dir()
    if folder.exists() and not folder.is_dir():
        raise CacheUnusable(f"the cache {folder} ($UNIMODEL_CACHE, default .cache) is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise CacheUnusable(f"the cache {folder} ($UNIMODEL_CACHE, default .cache) cannot be used: {error.strerror or error}") from None
    return folder


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


def meaning(source: str) -> str:
    """What ``source`` does, as text: its syntax tree without docstrings or other bare strings, positions left out."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(node, field, None)
            if isinstance(statements, list) and statements and isinstance(statements[0], ast.stmt):
                kept = [s for s in statements if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str))]
                setattr(node, field, kept or [ast.Pass()])
    return ast.dump(tree)


@cache
def code_fingerprint(module: str) -> str:
    """Hash of what ``module`` and every ``unimodel`` module it imports (transitively) do, as imported."""
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        source, is_package = module_source(name)
        seen[name] = meaning(source)
        todo.extend(unimodel_imports(name, source, is_package))
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + seen[name].encode() + b"\0")
    return digest.hexdigest()


@cache
def library_versions() -> str:
    return ",".join(f"{lib}={metadata.version(lib)}" for lib in LIBRARIES)


def artifact_key(modules: str | tuple[str, ...], *args: object) -> str:
    """The cache key of an artifact computed by the code of ``modules`` from ``args`` (JSON-able)."""
    modules = (modules,) if isinstance(modules, str) else modules
    code = [code_fingerprint(module) for module in modules]
    payload = json.dumps([code, library_versions(), args], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


@contextmanager
def exclusive(artifact: Path):
    """Hold the lock of ``artifact`` while the block runs: whoever waits for it finds the artifact made.

    The lock is a file under ``locks/`` that its holder removes when done; a waiter that then wakes
    up holding the removed file's lock takes a new one, so no two holders ever overlap.
    """
    lock = cache_dir() / "locks" / (hashlib.sha256(str(artifact.resolve()).encode()).hexdigest()[:32] + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(lock, "a")  # noqa: SIM115 - the lock is held as long as this handle stays open
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()  # the file this process locked was removed by the previous holder
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        handle.close()  # closing releases the lock


def artifact_path(kind: str, key: str, suffix: str) -> Path:
    """Where the artifact ``kind/key+suffix`` lives (or will) in the cache."""
    return cache_dir() / kind / f"{key}{suffix}"


def cached_path(kind: str, key: str, suffix: str, produce: Callable[[str], None]) -> Path:
    """Path of the artifact ``kind/key+suffix``; ``produce(tmp_path)`` writes it on a miss (once, whoever else asks)."""
    path = artifact_path(kind, key, suffix)
    if not path.exists():
        with exclusive(path):
            if not path.exists():  # another process may have made it while this one waited
                atomic_write(path, produce)
    return path


def cached_json(kind: str, key: str, compute: Callable[[], dict]) -> dict:
    """A JSON-able dict computed once per key."""

    def produce(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(compute(), indent=1, sort_keys=True), encoding="utf-8")

    return json.loads(cached_path(kind, key, ".json", produce).read_text(encoding="utf-8"))
