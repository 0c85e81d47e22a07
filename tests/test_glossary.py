"""One vocabulary and one kind of marked note, in both languages.

The glossary (docs/glossary.md, docs/en/glossary.md) is the site's one vocabulary: every page uses its terms, none of the variants
it rules out. A marked note is an erratum (the notes are wrong), an addendum (they are incomplete) or a measurement
that differs from the paper, titled in the page's language.

The notes' own text, quoted verbatim in the Chinese pages, is left as the author wrote it, and so are code
and mathematics.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import twins

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ROW = re.compile(r"^\|(?P<cells>.+)\|\s*$")
CODE = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$", re.S)
JUDGE_FREE = {"gan", "taxonomy"}  # the only chapters where a discriminator is meant


def glossary(language: str) -> list[dict]:
    """The glossary's rows: zh, en, where introduced, the variants not used (in the page's language)."""
    path = (DOCS if language == "zh" else twins.EN_DOCS) / "glossary.md"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if not match or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in match.group("cells").split("|")]
        if cells[0] == "中文":
            continue
        zh, en, introduced, banned = cells
        rows.append({"zh": zh, "en": en, "introduced": introduced, "banned": [b.strip() for b in re.split(r"[、,]", banned) if b.strip()]})
    return rows


def seed_lines() -> list[str]:
    """The lines of the learner's notes, which the Chinese pages quote as they are (the glossary does not rule them)."""
    return [line.strip() for line in twins.NOTES.read_text(encoding="utf-8").splitlines() if len(line.strip()) >= 8]


def checked_text(page: Path, seed: list[str]) -> str:
    """The page's prose: without code, mathematics, and lines that quote the notes."""
    lines = page.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not any(s in line or line.strip() in s for s in seed if line.strip())]
    return CODE.sub(" ", "\n".join(kept))


def pages(language: str) -> list[Path]:
    return [p for p in twins.pages(language) if p.name != "glossary.md"]


def test_both_glossaries_list_the_same_terms():
    zh, en = glossary("zh"), glossary("en")
    assert [(r["zh"], r["en"]) for r in zh] == [(r["zh"], r["en"]) for r in en]
    assert len(zh) >= 15


@pytest.mark.parametrize("language", ["zh", "en"])
def test_no_page_uses_a_variant_the_glossary_rules_out(language):
    if language == "zh" and twins.NOTES is None:
        pytest.skip("the learner's notes, which the Chinese pages quote as they are, are not on this machine")
    seed = seed_lines() if language == "zh" else []
    found = []
    for page in pages(language):
        text = checked_text(page, seed)
        if language == "zh":
            text = re.sub(r"流匹配(\*\*)?（flow matching）", "流匹配", text)  # the English term beside the Chinese one, where it is introduced
        for row in glossary(language):
            for variant in row["banned"]:
                for match in re.finditer(re.escape(variant), text, flags=0 if language == "zh" else re.I):
                    found.append(f"{page.name}: {variant!r} (the glossary says {row[language]!r}): ...{text[max(0, match.start() - 30) : match.end() + 30]}...")
    assert not found, "\n".join(found)


@pytest.mark.parametrize(("language", "word"), [("zh", "判别器"), ("en", "discriminator")])
def test_the_judge_is_never_called_a_discriminator(language, word):
    if language == "zh" and twins.NOTES is None:
        pytest.skip("the learner's notes, which the Chinese pages quote as they are, are not on this machine")
    seed = seed_lines() if language == "zh" else []
    offending = [page.name for page in pages(language) if page.name.split(".")[0] not in JUDGE_FREE and word in checked_text(page, seed).lower()]
    assert not offending, f"{word!r} outside the GAN and taxonomy chapters: {offending}"


def test_every_term_is_introduced_in_a_page_that_uses_it():
    for language in ("zh", "en"):
        for row in glossary(language):
            link = re.search(r"\(([\w.-]+\.md)\)", row["introduced"])
            assert link, f"{row[language]}: no chapter linked"
            page = (DOCS if language == "zh" else twins.EN_DOCS) / link.group(1)
            term = row[language].split("（")[0].split(" (")[0]
            assert term.lower() in page.read_text(encoding="utf-8").lower(), f"{term!r} is not in {page.name}"


def test_the_glossary_is_in_the_nav():
    assert "glossary.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


KINDS = {"zh": ("勘误", "补充", "实测"), "en": ("Erratum", "Addendum", "Measured")}  # the notes are wrong / incomplete / measured otherwise
ADMONITION = re.compile(r'^\s*!!! (\w+) "([^"]*)"', re.M)


def marked_notes(page: Path, language: str) -> list[str]:
    """The kinds of the page's marked notes, in order; each must be a note titled '<kind>: ...' in the page's language."""
    kinds = []
    for kind, title in ADMONITION.findall(page.read_text(encoding="utf-8")):
        words = [w for w in (*KINDS["zh"], *KINDS["en"]) if w in title]
        if not words:
            continue
        assert kind == "note", f"{page.name}: {title!r} is a {kind!r}; marked notes are notes"
        separator = "：" if language == "zh" else ": "
        assert any(title.startswith(k + separator) for k in KINDS[language]), (
            f"{page.name}: {title!r} is not '<kind>{separator}...' with a kind of {KINDS[language]}"
        )
        assert not [w for w in KINDS["en" if language == "zh" else "zh"] if w in title], f"{page.name}: {title!r} mixes the languages"
        kinds.append(KINDS[language].index(title.split(separator)[0]))
    return kinds


def test_marked_notes_are_of_one_kind_each_in_the_pages_language():
    for zh in pages("zh"):
        en = twins.english(zh)
        assert marked_notes(zh, "zh") == marked_notes(en, "en"), f"{zh.name}: the two languages mark different notes"
