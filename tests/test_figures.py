"""The figure pipeline: drawn once, redrawn when its code changes, never half-written."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from unimodel import cache
from unimodel.figures import registry

CHAPTER = """
from matplotlib import pyplot as plt

CALLS = []


def draw(lang):
    CALLS.append(lang)
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, {slope}])
    return fig
"""


@pytest.fixture
def chapter(tmp_path, monkeypatch):
    """A throwaway chapter module with one registered figure, and a fresh cache."""
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "throwaway_chapter.py"

    def load(slope: int):
        source.write_text(textwrap.dedent(CHAPTER.format(slope=slope)), encoding="utf-8")
        cache.code_fingerprint.cache_clear()
        sys.modules.pop("throwaway_chapter", None)
        module = importlib.import_module("throwaway_chapter")
        monkeypatch.setitem(registry.FIGURES, "test/line", registry.Item("test/line", module.draw, module.__name__))
        return module

    yield load
    sys.modules.pop("throwaway_chapter", None)
    cache.code_fingerprint.cache_clear()


def test_a_second_render_reads_the_cache(chapter):
    module = chapter(slope=1)
    first = registry.render_figure("test/line", "en")
    second = registry.render_figure("test/line", "en")
    assert first == second and first.read_bytes().startswith(b"\x89PNG")
    assert module.CALLS == ["en"], "the figure was drawn twice"


def test_each_language_is_drawn_separately(chapter):
    module = chapter(slope=1)
    assert registry.render_figure("test/line", "zh") != registry.render_figure("test/line", "en")
    assert sorted(module.CALLS) == ["en", "zh"]


def test_changing_the_code_redraws(chapter):
    chapter(slope=1)
    before = registry.render_figure("test/line", "en")
    module = chapter(slope=2)
    after = registry.render_figure("test/line", "en")
    assert before != after and module.CALLS == ["en"]


def test_a_failing_figure_leaves_nothing_in_the_cache(chapter, tmp_path):
    module = chapter(slope=1)

    def broken(lang):
        raise RuntimeError("boom")

    registry.FIGURES["test/line"] = registry.Item("test/line", broken, module.__name__)
    with pytest.raises(RuntimeError, match="boom"):
        registry.render_figure("test/line", "en")
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert leftovers == []


def test_results_are_cached_too(chapter, monkeypatch):
    module = chapter(slope=1)
    calls = []

    def compute():
        calls.append(1)
        return {"value": 3.5}

    monkeypatch.setitem(registry.RESULTS, "test-result", registry.Item("test-result", compute, module.__name__))
    assert registry.compute_result("test-result") == {"value": 3.5}
    assert registry.compute_result("test-result") == {"value": 3.5}
    assert calls == [1]


def test_each_profile_has_its_own_cache_entry(chapter, monkeypatch):
    module = chapter(slope=1)
    monkeypatch.setenv("UNIMODEL_PROFILE", "full")
    full = registry.render_figure("test/line", "en")
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    quick = registry.render_figure("test/line", "en")
    assert full != quick and module.CALLS == ["en", "en"]


def test_the_profile_picks_the_budget(monkeypatch):
    monkeypatch.delenv("UNIMODEL_PROFILE", raising=False)
    assert registry.profile() == "full" and registry.budget(full=40, quick=2) == 40
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    assert registry.budget(full=40, quick=2) == 2
    monkeypatch.setenv("UNIMODEL_PROFILE", "fast")
    with pytest.raises(ValueError, match="UNIMODEL_PROFILE must be one of full, quick, got 'fast'"):
        registry.budget(full=40, quick=2)


def test_a_chapter_edited_during_a_build_keeps_the_key_of_the_code_that_runs(tmp_path, monkeypatch):
    """The key is the hash of the code as imported: an edit made while a long build runs must not name its artifacts."""
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "edited_chapter.py"
    source.write_text("VALUE = 1\n", encoding="utf-8")
    monkeypatch.setattr(registry, "CHAPTERS", ("edited_chapter",))
    cache.code_fingerprint.cache_clear()
    try:
        registry.load_chapters()
        source.write_text("VALUE = 2\n", encoding="utf-8")  # edited after the import, before any figure is keyed
        imported = cache.code_fingerprint("edited_chapter")
        cache.code_fingerprint.cache_clear()
        assert imported != cache.code_fingerprint("edited_chapter")
    finally:
        sys.modules.pop("edited_chapter", None)
        cache.code_fingerprint.cache_clear()


def test_every_chapter_is_named_after_a_page_in_both_languages_and_names_its_items_after_it():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    registry.load_chapters()
    assert len(registry.CHAPTERS) >= 15 and "unimodel.chapters.unified_model" in registry.CHAPTERS
    for module in registry.CHAPTERS:
        page = registry.page_of(module)
        assert (docs / f"{page}.md").is_file() and (docs / "en" / f"{page}.md").is_file(), f"{module} draws no page: docs/{page}.md"
    for table, separator in ((registry.FIGURES, "/"), (registry.RESULTS, "-")):
        for name, item in table.items():
            assert name.startswith(registry.page_of(item.module) + separator), (name, item.module)


def test_an_item_not_named_after_its_page_is_refused():
    def draw(lang):
        return None

    draw.__module__ = "unimodel.chapters.vae"
    with pytest.raises(ValueError, match=r"must start with its page's name: vae/"):
        registry.figure("gan/borrowed")(draw)
    with pytest.raises(ValueError, match=r"must start with its page's name: vae-"):
        registry.result("vaelike-numbers")(draw)
    assert "gan/borrowed" not in registry.FIGURES and "vaelike-numbers" not in registry.RESULTS
