"""The pages: zh/en parity, snippet sections, figures and numbers, runnable snippet scripts."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import twins

from unimodel.figures import registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SNIPPETS = ROOT / "snippets"

INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.M)
SECTION = re.compile(r"#\s*--8<--\s*\[start:([a-z0-9-]+)\]")
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
DISPLAY_MATH = re.compile(r"^\s*\$\$\s*\n(.*?)\n\s*\$\$\s*$", re.M | re.S)
HEADING = re.compile(r"^(#{1,6})\s", re.M)
FENCE = re.compile(r"^\s*```.*?^\s*```", re.M | re.S)


def pages() -> list[Path]:
    return twins.pages("zh")


english = twins.english


def structure(text: str) -> dict[str, list]:
    """What both languages must share, in order."""
    prose = FENCE.sub("", text)  # '#' lines inside code blocks are not headings
    return {
        "headings": [len(h) for h in HEADING.findall(prose)],
        "display math": [" ".join(m.split()) for m in DISPLAY_MATH.findall(text)],
        "figures": [src for _, src in IMAGE.findall(text)],
        "snippets": INCLUDE.findall(text),
        "numbers": [m.group(0) for m in registry.PLACEHOLDER.finditer(text)],
        "admonitions": len(re.findall(r"^\s*!!! ", text, re.M)),
    }


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_page_has_an_english_twin_with_the_same_structure(page):
    twin = english(page)
    assert twin.exists(), f"{twin.name} is missing"
    zh, en = structure(page.read_text(encoding="utf-8")), structure(twin.read_text(encoding="utf-8"))
    for key in zh:
        assert zh[key] == en[key], f"{page.name} and {twin.name} differ in their {key}"


def test_no_english_page_without_a_chinese_one():
    for twin in twins.pages("en", "*"):
        assert twin.is_dir() or twins.chinese(twin).exists(), twin


def test_notebooks_mirror_each_other():
    import nbformat

    for zh in twins.pages("zh", "*.ipynb"):
        a, b = nbformat.read(zh, 4), nbformat.read(english(zh), 4)
        assert [c.cell_type for c in a.cells] == [c.cell_type for c in b.cells]
        code = lambda nb: [c.source for c in nb.cells if c.cell_type == "code"]  # noqa: E731
        assert code(a) == code(b), f"{zh.name}: the code cells differ between languages"
        assert a.metadata.get("unimodel") == b.metadata.get("unimodel"), f"{zh.name}: the quick profile's budgets differ between languages"


def test_images_have_alt_text_in_the_page_language():
    for page in pages():
        for path, cjk_expected in ((page, True), (english(page), False)):
            for alt, src in IMAGE.findall(path.read_text(encoding="utf-8")):
                assert alt.strip(), f"{path.name}: {src} has no alt text"
                has_cjk = bool(re.search(r"[\u4e00-\u9fff]", alt))
                assert has_cjk == cjk_expected, f"{path.name}: alt text of {src} is not in the page's language"


def all_docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))


def test_every_snippet_include_resolves():
    for target in INCLUDE.findall(all_docs_text()):
        file, _, section = target.partition(":")
        assert (ROOT / file).is_file(), f"{file} does not exist"
        if section:
            text = (ROOT / file).read_text(encoding="utf-8")
            assert f"[start:{section}]" in text and f"[end:{section}]" in text, f"{target}: no such section"


def test_every_marked_section_is_shown_on_a_page():
    used = set(INCLUDE.findall(all_docs_text()))
    for source in sorted((ROOT / "src").rglob("*.py")):
        for section in SECTION.findall(source.read_text(encoding="utf-8")):
            target = f"{source.relative_to(ROOT).as_posix()}:{section}"
            assert target in used, f"section {target} is marked but no page includes it"


def test_every_snippet_script_is_shown_on_a_page():
    used = set(INCLUDE.findall(all_docs_text()))
    for script in sorted(SNIPPETS.glob("*.py")):
        assert f"snippets/{script.name}" in used, f"{script.name} is on no page"


def test_figures_on_pages_are_exactly_the_registered_ones():
    registry.load_chapters()
    shown = {src.removeprefix("figures/").removesuffix(".png") for _, src in IMAGE.findall(all_docs_text()) if src.startswith("figures/")}
    assert shown == set(registry.FIGURES)


def test_every_number_on_a_page_names_a_registered_result():
    registry.load_chapters()
    for match in registry.PLACEHOLDER.finditer(all_docs_text()):
        assert match.group(1) in registry.RESULTS, match.group(0)


def test_placeholders_are_replaced_and_unknown_ones_fail():
    results = {"demo": {"a": {"b": [1.23456, 2]}}}
    assert registry.substitute_results("x = [[demo.a.b.0:.2f]], n = [[demo.a.b.1]]", results) == "x = 1.23, n = 2"
    with pytest.raises(KeyError, match=r"no 'a\.c'"):
        registry.substitute_results("[[demo.a.c]]", results, "page.md")
    with pytest.raises(KeyError, match="unknown result"):
        registry.substitute_results("[[nope.x]]", results, "page.md")


def quick_args(script: Path) -> list[str]:
    """The script's own short setting, from its ``# quick: ARGS`` line."""
    match = re.search(r"^# quick: (.+)$", script.read_text(encoding="utf-8"), re.M)
    assert match, f"{script.name} has no '# quick: ARGS' line giving a short setting"
    return shlex.split(match.group(1))


@pytest.mark.parametrize("script", sorted(SNIPPETS.glob("*.py")), ids=lambda p: p.name)
def test_snippet_script_runs_as_it_stands(script, tmp_path):
    """Run from an empty folder, as someone who copied it would."""
    done = subprocess.run([sys.executable, str(script), *quick_args(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp_path.iterdir()), "the script wrote nothing"


def test_built_pages_show_every_number_and_figure(built_site):
    img = re.compile(r'<img[^>]+src="([^"]+)"')
    figures_seen = set()
    for html in built_site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        documented = html.parent.name == "api"  # the API reference quotes the registry's docstrings, which show the syntax
        assert documented or not registry.PLACEHOLDER.search(text), f"{html}: a [[result]] placeholder survived"
        for src in img.findall(text):
            if src.startswith("data:"):
                continue
            target = (html.parent / src.split("#")[0]).resolve()
            assert target.is_file(), f"{html.relative_to(built_site)}: image {src} is missing"
            if "/figures/" in target.as_posix():
                figures_seen.add(target.relative_to(built_site).as_posix())
    for name in registry.FIGURES:
        assert f"figures/{name}.png" in figures_seen and f"en/figures/{name}.png" in figures_seen, name


def test_built_notebook_pages_hold_their_outputs(built_site):
    for page in ("vae-notebook/index.html", "en/vae-notebook/index.html"):
        html = (built_site / page).read_text(encoding="utf-8")
        assert "data:image/png;base64" in html, f"{page}: the executed notebook's plots are missing"
        assert "nll_is" in html, f"{page}: the evaluation cell's output is missing"


def test_a_number_a_run_could_not_give_is_a_dash_on_a_quick_page_and_an_error_on_a_full_one(monkeypatch):
    results = {"demo": {"share": None}}
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    assert registry.substitute_results("[[demo.share:.1%]]", results, "page.md") == "—"
    monkeypatch.setenv("UNIMODEL_PROFILE", "full")
    with pytest.raises(KeyError, match="has no value"):
        registry.substitute_results("[[demo.share:.1%]]", results, "page.md")
