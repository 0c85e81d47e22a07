"""Registered figures and results, rendered into the cache.

A chapter module (one per page, ``unimodel.chapters.<page>``, found by its
file) decorates ``draw(lang) -> matplotlib Figure`` functions with
``@figure("page/name")`` and ``compute() -> dict`` functions with
``@result("page-name")``, registers the models its page runs in the
reader's browser with ``@exported("page/name")`` (``unimodel.website.exports``),
and declares the runs its items load with
``@trains`` on a function that lists them (``RunSpec``s), so that a build
can train every run first, side by side. A page shows ``figures/page/name.png`` (each
language gets the figure drawn with its own labels) and writes a number as
``[[page-name.key:.1f]]``. Each item is cached under a hash of its
module's code (and of everything it imports from unimodel), of its
chapter's declared runs and of the results it declares it ``uses`` from
other chapters, so editing a model re-renders exactly the figures that
depend on it.

``$UNIMODEL_PROFILE`` sets the budget of every experiment: ``full`` (the
default) trains what the chapters discuss; ``quick`` trains for a few epochs
only, so that the tests can build every page in minutes. Chapter modules
choose their epochs with ``budget(full=..., quick=...)``; the profile is part
of every cache key, and each page built quick says so at its top.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unimodel import cache
from unimodel.figures import style

LANGUAGES = ("zh", "en")
CHAPTERS_PACKAGE = "unimodel.chapters"  # one module per page: chapters/unified_model.py draws docs/unified-model.md


def _chapter_modules() -> tuple[str, ...]:
    """Every module of ``unimodel.chapters``, found on disk: adding a chapter is adding its file."""
    package = importlib.import_module(CHAPTERS_PACKAGE)
    return tuple(sorted(f"{CHAPTERS_PACKAGE}.{found.name}" for found in pkgutil.iter_modules(package.__path__)))


CHAPTERS = _chapter_modules()


def page_of(module: str) -> str:
    """The page a chapter module draws, by name: ``unimodel.chapters.unified_model`` -> "unified-model" (docs/unified-model.md)."""
    return module.rsplit(".", 1)[-1].replace("_", "-")


log = logging.getLogger(__name__)
PROFILES = ("full", "quick")


def profile() -> str:
    """The experiments' budget, ``$UNIMODEL_PROFILE``: "full" (the default) or "quick"."""
    name = os.environ.get("UNIMODEL_PROFILE", "full")
    if name not in PROFILES:
        raise ValueError(f"UNIMODEL_PROFILE must be one of {', '.join(PROFILES)}, got {name!r}")
    return name


def budget(full, quick):
    """``full`` under the full profile, ``quick`` under the quick one (epochs, samples, ...)."""
    return quick if profile() == "quick" else full


QUICK_TEST = 60  # test digits the chapters score their models on under the quick profile


def scored_splits():
    """The digits' splits whose test part a chapter scores its models on: all 447 test digits, or the first ``QUICK_TEST`` under the quick profile.

    A page built quick only shows that every number is computed; scoring a barely trained model
    on every test digit would cost the test build minutes and tell nothing more.
    """
    from unimodel.data import digits_splits

    splits = digits_splits()
    return splits if profile() == "full" else splits.first_test(QUICK_TEST)


@dataclass(frozen=True)
class Item:
    name: str
    function: Callable
    module: str
    uses: tuple[str, ...] = ()  # other results it reads (their keys are part of its key; the build computes them first)
    runs: Callable[[], list] | None = None  # the runs a result loads, when fewer than its chapter's: it may start before the others are trained


FIGURES: dict[str, Item] = {}
RESULTS: dict[str, Item] = {}
EXPORTS: dict[str, Item] = {}  # the models pages run in the browser (unimodel.website.exports)
TRAINS: dict[str, Callable[[], list]] = {}  # chapter module -> the RunSpecs its items load


def _register(table: dict[str, Item], name: str, uses: tuple[str, ...], runs: Callable[[], list] | None = None, separator: str = "-"):
    def decorate(function: Callable) -> Callable:
        if name in table:
            raise ValueError(f"{name!r} is registered twice")
        if function.__module__.startswith(CHAPTERS_PACKAGE + "."):
            page = page_of(function.__module__)
            if not name.startswith(page + separator):
                raise ValueError(f"{name!r} of {function.__module__} must start with its page's name: {page}{separator}...")
        table[name] = Item(name, function, function.__module__, tuple(uses), runs)
        return function

    return decorate


def figure(name: str, uses: tuple[str, ...] = ()):
    """Register ``draw(lang)`` as the figure ``name`` (``chapter/figure-name``); ``uses``: other chapters' results it reads (its own chapter's come first anyway)."""
    return _register(FIGURES, name, uses, separator="/")


def result(name: str, uses: tuple[str, ...] = (), runs: Callable[[], list] | None = None):
    """Register ``compute()`` as the result ``name``, a dict of numbers pages can cite; ``uses``: the other results it reads, of its chapter or another.

    ``runs() -> [RunSpec, ...]``: the runs it loads, when it loads fewer than its chapter declares
    (a long result can then start while the others still train); by default all of them.
    """
    return _register(RESULTS, name, uses, runs)


def exported(name: str, uses: tuple[str, ...] = ()):
    """Register ``export() -> Export`` (``unimodel.website.exports``) as the browser model ``name``, served at ``models/<name>.onnx``."""
    return _register(EXPORTS, name, uses, separator="/")


def trains(function: Callable[[], list]) -> Callable[[], list]:
    """Register ``function() -> [RunSpec, ...]``: every run the items of its chapter load."""
    TRAINS[function.__module__] = function
    return function


def chapter_runs(module: str) -> list:
    """The runs chapter ``module`` declares (none if it trains nothing)."""
    return TRAINS[module]() if module in TRAINS else []


def item_key(item: Item, *args) -> str:
    """The key of ``item``: its module's code, ``args``, the profile, its chapter's runs and the results it uses."""
    runs = [spec.key for spec in chapter_runs(item.module)]
    used = [result_key(RESULTS[name]) for name in item.uses]
    return cache.artifact_key(item.module, *args, profile(), runs, used)


def result_key(item: Item) -> str:
    return item_key(item, "result", item.name)


def load_chapters() -> None:
    for module in CHAPTERS:
        importlib.import_module(module)
        # hash the code now, as it was imported: a file edited during a long build must not lend
        # its new key to an artifact the old code produced
        cache.code_fingerprint(module)


def _figure_artifact(name: str, lang: str) -> tuple[str, str, str]:
    return "figures", f"{name.replace('/', '--')}-{lang}-{item_key(FIGURES[name], 'figure', name, lang)}", ".png"


def _result_artifact(name: str) -> tuple[str, str, str]:
    return "results", f"{name}-{result_key(RESULTS[name])}", ".json"


EXPORTER = ("onnx", "onnxscript", "onnx-ir", "onnxruntime")  # what writes and checks an ONNX file: their versions key it


def export_artifact(name: str) -> tuple[str, str, str]:
    """The cache's kind, stem and suffix of the ONNX file of browser model ``name``."""
    from importlib import metadata

    versions = [f"{library}={metadata.version(library)}" for library in EXPORTER]
    return "models", f"{name.replace('/', '--')}-{item_key(EXPORTS[name], 'export', name, versions)}", ".onnx"


def figure_path(name: str, lang: str) -> Path:
    """Where the PNG of figure ``name`` in ``lang`` is cached, drawn or not."""
    load_chapters()
    return cache.artifact_path(*_figure_artifact(name, lang))


def result_path(name: str) -> Path:
    """Where the numbers of result ``name`` are cached, computed or not."""
    load_chapters()
    return cache.artifact_path(*_result_artifact(name))


def render_figure(name: str, lang: str) -> Path:
    """The cached PNG of figure ``name`` in language ``lang``, drawn on a miss."""
    load_chapters()
    item = FIGURES[name]

    def produce(tmp: str) -> None:
        started = time.perf_counter()
        style.setup(lang)
        style.save(item.function(lang), tmp)
        log.info("unimodel: drew %s (%s) in %.1f s", name, lang, time.perf_counter() - started)

    return cache.cached_path(*_figure_artifact(name, lang), produce)


def compute_result(name: str) -> dict:
    """The cached numbers of result ``name``."""
    load_chapters()
    kind, stem, _ = _result_artifact(name)
    return cache.cached_json(kind, stem, RESULTS[name].function)


PLACEHOLDER = re.compile(r"\[\[([a-z0-9-]+)\.([A-Za-z0-9_.-]+?)(?::([^\]]*))?\]\]")


def lookup(results: dict, name: str, path: str):
    """The value at ``path`` (dot-separated keys or list indices) in result ``name``."""
    if name not in results:
        raise KeyError(f"unknown result {name!r}")
    value = results[name]
    for part in path.split("."):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError):
            raise KeyError(f"result {name!r} has no {path!r}") from None
    return value


def substitute_results(markdown: str, results: dict, where: str = "") -> str:
    """Replace every ``[[result.path:format]]`` by its value in ``results``; an unknown one raises."""

    def replace(match: re.Match) -> str:
        try:
            value = lookup(results, match.group(1), match.group(2))
        except KeyError as error:
            raise KeyError(f"{where}: {match.group(0)}: {error.args[0]}") from None
        if value is None:  # a number the run could not give (a share of nothing, say): a dash on a quick page, an error on a full one
            if profile() == "quick":
                return "—"
            raise KeyError(f"{where}: {match.group(0)} has no value in this build")
        return format(value, match.group(3) or "")

    return PLACEHOLDER.sub(replace, markdown)
