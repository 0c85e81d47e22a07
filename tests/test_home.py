"""The home page's map: the road walks the navigation, and each chapter has its card with a figure of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from twins import CONFIGS, config_nav, nav_files

from unimodel.chapters import index

ROOT = Path(__file__).resolve().parents[1]
HOME = {"zh": ROOT / "docs" / "index.md", "en": ROOT / "docs" / "en" / "index.md"}
# a card: the linked thumbnail of one figure, then the chapter's title linked to its page
CARD = re.compile(r"^-   \[!\[[^\]]+\]\(figures/([\w-]+)/[\w-]+\.png\)\{ loading=lazy \}\]\(([\w-]+)\.md\)$", re.M)


def _nav_parts(language: str) -> list[list[str]]:
    """The chapters of each section of the navigation, as page names, without notebooks."""
    sections = [entry for entry in config_nav(language) if isinstance(entry, dict) and isinstance(next(iter(entry.values())), list)]
    return [[page.removesuffix(".md") for page in nav_files(list(section.values())) if page.endswith(".md")] for section in sections]


def _road() -> list[list[str]]:
    return [[key for key, _, _ in part] for part in index.CHAPTERS]


@pytest.mark.parametrize("language", CONFIGS)
def test_the_road_walks_the_navigation(language):
    assert _road() == _nav_parts(language)


@pytest.mark.parametrize("language", HOME)
def test_the_home_page_has_a_card_per_chapter_in_the_road_s_order_each_with_a_figure_of_its_own(language):
    cards = CARD.findall(HOME[language].read_text(encoding="utf-8"))
    assert [page for _, page in cards] == [page for part in _road() for page in part]
    assert [figure_page for figure_page, _ in cards] == [page for _, page in cards], "a card shows another chapter's figure"


def test_the_card_pattern_reads_a_card():
    card = "-   [![alt](figures/vae/latent-space.png){ loading=lazy }](vae.md)"
    assert CARD.findall(card) == [("vae", "vae")]
