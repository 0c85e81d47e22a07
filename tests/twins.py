"""The pages of both languages: ``docs/x.md`` in Chinese, its twin ``docs/en/x.md`` in English (notebooks alike); their navigation; the learner's notes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EN_DOCS = DOCS / "en"
# The learner's notes that the Chinese pages quote verbatim. They are not in the repository: CI lays
# shared/ beside the clone, a developer's machine has it at /work/shared; a reader's clone has neither.
NOTES = next(
    (p for p in (ROOT.parent / "shared" / "seed" / "unified-model-notes.zh.md", Path("/work/shared/seed/unified-model-notes.zh.md")) if p.is_file()),
    None,
)


def pages(language: str, pattern: str = "*.md") -> list[Path]:
    """The pages of one language ("zh" or "en") whose names match ``pattern``, sorted."""
    if language == "en":
        return sorted(EN_DOCS.rglob(pattern))
    return sorted(p for p in DOCS.rglob(pattern) if EN_DOCS not in p.parents and ".ipynb_checkpoints" not in p.parts)


def english(page: Path) -> Path:
    """The English twin of a Chinese page (which may not exist)."""
    return EN_DOCS / page.relative_to(DOCS)


def chinese(page: Path) -> Path:
    """The Chinese twin of an English page (which may not exist)."""
    return DOCS / page.relative_to(EN_DOCS)


class _AnyTagLoader(yaml.SafeLoader):
    """Reads mkdocs.yml without building its Python objects (``!ENV``, ``!!python/...``)."""


_AnyTagLoader.add_multi_constructor("", lambda loader, suffix, node: None)
_AnyTagLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def nav_files(nav) -> list[str]:
    """The docs files named anywhere in a ``nav`` tree."""
    found = []
    if isinstance(nav, str):
        if not urlsplit(nav).scheme:
            found.append(nav)
    elif isinstance(nav, list):
        for item in nav:
            found += nav_files(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            found += nav_files(value)
    return found


CONFIGS = {"zh": "mkdocs.yml", "en": "mkdocs.en.yml"}  # each language's MkDocs configuration


def config_nav(language: str) -> list:
    """The ``nav`` tree of one language's configuration, as written (empty if it has none)."""
    config = yaml.load((ROOT / CONFIGS[language]).read_text(encoding="utf-8"), Loader=_AnyTagLoader)
    return config.get("nav") or []
