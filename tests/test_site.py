"""The site: strict build, self-hosted MathJax, no external requests, math,
language switch and search, checked in the built HTML and in headless Chromium.

The browser tests open pages of the site served on 127.0.0.1 (fixtures in
conftest.py); every request to another host is recorded and aborted.
"""

from __future__ import annotations

import filecmp
import importlib.util
import json
import os
import re
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pytest
import twins

ROOT = Path(__file__).resolve().parents[1]
LOCAL_HOST = "127.0.0.1"


# ------------------------------------------------------------------ the build


def test_strict_build_passes(built_site: Path) -> None:
    for page in ("index.html", "vae/index.html", "en/index.html", "en/vae/index.html"):
        assert (built_site / page).is_file(), f"{page} was not built"
    assert '<html lang="zh"' in (built_site / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en"' in (built_site / "en" / "index.html").read_text(encoding="utf-8")


def test_mathjax_is_served_by_the_site(built_site: Path) -> None:
    served = built_site / "javascripts" / "mathjax" / "tex-svg.js"
    assert served.is_file(), "tex-svg.js is not in the built site"
    assert filecmp.cmp(served, ROOT / "node_modules" / "mathjax" / "es5" / "tex-svg.js", shallow=False)
    assert (built_site / "javascripts" / "mathjax" / "input" / "tex" / "extensions" / "boldsymbol.js").is_file()
    assert not list((ROOT / "docs").rglob("tex-svg.js")), "docs/ must hold no generated files"


@pytest.mark.parametrize(("folder", "add", "what"), [("MATHJAX_DIR", "_add_mathjax", "MathJax"), ("ONNXRUNTIME_DIR", "_add_onnxruntime", "ONNX Runtime Web")])
def test_build_stops_with_advice_when_an_npm_package_is_missing(tmp_path: Path, monkeypatch, folder: str, add: str, what: str) -> None:
    from mkdocs.exceptions import PluginError

    spec = importlib.util.spec_from_file_location("docs_hooks_under_test", ROOT / "src" / "unimodel" / "website" / "docs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    monkeypatch.setattr(hooks, folder, tmp_path / "node_modules" / "missing")
    with pytest.raises(PluginError, match=f"{what} not found .*npm ci"):
        getattr(hooks, add)(files=None, config=None)  # it checks before it adds anything


def test_a_quick_build_says_so_on_every_page_with_computed_content(built_site: Path) -> None:
    quick = os.environ.get("UNIMODEL_PROFILE", "quick") == "quick"  # conftest's default
    for page, notice in (
        ("vae/index.html", "快速构建"),
        ("gan/index.html", "快速构建"),
        ("en/vae/index.html", "Quick build"),
        ("en/gan/index.html", "Quick build"),
        ("index.html", "快速构建"),  # the home page's map shows a figure of every chapter
        ("en/index.html", "Quick build"),
    ):
        assert (notice in (built_site / page).read_text(encoding="utf-8")) == quick, page
    assert "快速构建" not in (built_site / "glossary" / "index.html").read_text(encoding="utf-8"), "the glossary shows nothing computed"


def test_the_quick_notice_goes_under_the_title(monkeypatch) -> None:
    from unimodel.website.docs_hooks import _with_quick_notice

    page = "# 标题\n\n正文 [[vae-nll.gain:.1f]]\n"
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    noticed = _with_quick_notice(page, "zh")
    assert noticed.startswith('# 标题\n\n!!! warning "快速构建"') and noticed.endswith("正文 [[vae-nll.gain:.1f]]\n")
    assert _with_quick_notice("# Title\n\nNo numbers here.\n", "en") == "# Title\n\nNo numbers here.\n"
    monkeypatch.setenv("UNIMODEL_PROFILE", "full")
    assert _with_quick_notice(page, "zh") == page


class _References(HTMLParser):
    """Collect the URLs a page loads: <script src>, <link href>, <img src>, ..."""

    LOADS: ClassVar[dict[str, str]] = {"script": "src", "link": "href", "img": "src", "source": "src", "iframe": "src", "video": "src", "audio": "src"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = self.LOADS.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _is_remote(url: str) -> bool:
    parts = urlsplit(url.strip())
    if parts.scheme in ("http", "https", "ws", "wss") or url.strip().startswith("//"):
        return parts.hostname != LOCAL_HOST
    return False


def test_no_page_references_another_host(built_site: Path) -> None:
    remote = []
    for html in sorted(built_site.rglob("*.html")):
        parser = _References()
        parser.feed(html.read_text(encoding="utf-8"))
        remote += [f"{html.relative_to(built_site)}: {url}" for url in parser.urls if _is_remote(url)]
    for css in sorted(built_site.rglob("*.css")):
        for url in re.findall(r"""(?:url\(\s*["']?|@import\s+["'])([^"')\s]+)""", css.read_text(encoding="utf-8")):
            if _is_remote(url):
                remote.append(f"{css.relative_to(built_site)}: {url}")
    assert not remote, "pages load from other hosts:\n" + "\n".join(remote)


def test_each_language_has_its_own_search_index(built_site: Path) -> None:
    zh = json.loads((built_site / "search" / "search_index.json").read_text(encoding="utf-8"))
    en = json.loads((built_site / "en" / "search" / "search_index.json").read_text(encoding="utf-8"))
    zh_pages = {doc["location"].split("#")[0] for doc in zh["docs"]}
    en_pages = {doc["location"].split("#")[0] for doc in en["docs"]}
    assert "vae/" in zh_pages and "vae/" in en_pages  # en locations are relative to /en/
    assert not any(page.startswith("en/") for page in zh_pages), "English pages in the Chinese index"
    assert en["config"]["lang"] == ["en"]
    assert "zh" in zh["config"]["lang"]
    for config in (zh["config"], en["config"]):
        assert "stemmer" not in config["pipeline"], "the stemmer breaks prefix search (see docs_hooks.SEARCH)"
    zh_titles = " ".join(doc["title"] for doc in zh["docs"])
    assert "\u200b" in zh_titles, "Chinese text was not segmented by jieba"


def test_notebooks_are_rendered_as_pages(built_site: Path) -> None:
    notebooks = twins.pages("zh", "*.ipynb")
    if not notebooks:
        pytest.skip("no notebook in docs/")
    for notebook in [*notebooks, *map(twins.english, notebooks)]:
        rel = notebook.relative_to(ROOT / "docs")
        page_dir = built_site / rel.parent / rel.stem
        html = (page_dir / "index.html").read_text(encoding="utf-8")
        assert "jp-Cell" in html, f"{rel} is not rendered as a notebook page"
        assert '"cell_type"' not in html, f"{rel} is rendered as raw JSON"
        assert (page_dir / notebook.name).is_file(), f"{rel} is not downloadable next to its page"


# ---------------------------------------------------------------- the browser


@contextmanager
def _browse(chromium, served_site: str):
    """A fresh browser context; yields (page, log). Other hosts are aborted and logged."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    log: dict[str, list[str]] = {"remote": [], "failed": [], "errors": []}

    def route(route):
        if urlsplit(route.request.url).hostname == LOCAL_HOST:
            route.continue_()
        else:
            log["remote"].append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()

    def response(response):
        if response.status >= 400:
            log["failed"].append(f"{response.status} {response.url}")

    page.on("response", response)
    page.on("pageerror", lambda error: log["errors"].append(str(error)))
    try:
        yield page, log
    finally:
        context.close()


_MATH_TYPESET = """() => {
    const math = [...document.querySelectorAll('article .arithmatex')];
    return math.length > 0 && math.every(el => el.querySelector('mjx-container'));
}"""
_MATH_ERRORS = "() => document.querySelectorAll('mjx-merror, [data-mml-node=\"merror\"]').length"


def _switch_language(page, language: str) -> None:
    page.hover(".md-header__option .md-select")
    page.click(f'.md-select__link[hreflang="{language}"]')


@pytest.mark.browser
def test_language_switch_keeps_the_page(chromium, served_site: str) -> None:
    with _browse(chromium, served_site) as (page, log):
        page.goto(served_site + "/vae/")
        _switch_language(page, "en")
        page.wait_for_url(served_site + "/en/vae/")
        _switch_language(page, "zh")
        page.wait_for_url(served_site + "/vae/")
        assert not log["errors"], f"JavaScript errors: {log['errors']}"


@pytest.mark.browser
def test_instant_navigation_typesets_math_and_updates_the_language_switch(chromium, served_site: str) -> None:
    with _browse(chromium, served_site) as (page, log):
        page.goto(served_site + "/", wait_until="networkidle")
        page.evaluate("window.__sameDocument = true")
        page.click('article a[href$="vae/"]')
        page.wait_for_url(served_site + "/vae/")
        page.wait_for_function(_MATH_TYPESET, timeout=20_000)
        assert page.evaluate("window.__sameDocument === true"), "the link was not followed by instant navigation"
        assert page.evaluate(_MATH_ERRORS) == 0
        _switch_language(page, "en")
        page.wait_for_url(served_site + "/en/vae/")
        assert not log["errors"], f"JavaScript errors: {log['errors']}"


def _search(page, query: str) -> list[str]:
    """Type a query into Material's search box; the paths of the results."""
    page.wait_for_function(
        "() => { const m = document.querySelector('.md-search-result__meta'); return m && !/初始化|Initializing/.test(m.textContent); }",
        timeout=20_000,
    )
    page.fill("input.md-search__input", query)
    page.press("input.md-search__input", "End")  # Material searches on keyup
    try:
        page.wait_for_function("() => document.querySelectorAll('.md-search-result__item').length > 0", timeout=10_000)
    except Exception:
        meta = page.text_content(".md-search-result__meta")
        pytest.fail(f"no search result for {query!r} on {page.url}: {meta!r}")
    hrefs = page.eval_on_selector_all(".md-search-result__item > a", "links => links.map(a => a.href)")
    return sorted({urlsplit(href).path for href in hrefs})


@pytest.mark.browser
def test_chinese_search_finds_chinese_pages(chromium, served_site: str) -> None:
    with _browse(chromium, served_site) as (page, log):
        page.goto(served_site + "/")
        results = _search(page, "变分")
        assert "/vae/" in results
        assert not [path for path in results if path.startswith("/en/")], results


@pytest.mark.browser
def test_english_search_finds_english_pages(chromium, served_site: str) -> None:
    with _browse(chromium, served_site) as (page, log):
        page.goto(served_site + "/en/")
        results = _search(page, "reparameterization")
        assert "/en/vae/" in results
        assert all(path.startswith("/en/") for path in results), results


def test_notebook_headings_get_the_ids_their_contents_link_to() -> None:
    """mkdocs-jupyter gives a Chinese heading id="" and links its contents entry to #_1."""
    from types import SimpleNamespace

    from mkdocs.structure.toc import get_toc

    spec = importlib.util.spec_from_file_location("docs_hooks_under_test", ROOT / "src" / "unimodel" / "website" / "docs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    html = (
        '<h1 id="vae">VAE 笔记本<a class="anchor-link" href="#vae">¶</a></h1>'
        '<h2 id="1">1. 数据<a class="anchor-link" href="#1">¶</a></h2>'
        '<h2 id="">动手改一改<a class="anchor-link" href="#">¶</a></h2>'
        '<h2 id="">再改一改<a class="anchor-link" href="#">¶</a></h2>'
        '<h2 id="x">X<a class="anchor-link" href="#x">¶</a></h2><h2 id="x">X<a class="anchor-link" href="#x">¶</a></h2>'
    )
    tokens = [
        {
            "level": 1,
            "id": "vae",
            "name": "VAE 笔记本",
            "children": [
                {"level": 2, "id": "1", "name": "1. 数据", "children": []},
                {"level": 2, "id": "_1", "name": "动手改一改", "children": []},
                {"level": 2, "id": "_2", "name": "再改一改", "children": []},
                {"level": 2, "id": "x", "name": "X", "children": []},
                {"level": 2, "id": "x_1", "name": "X", "children": []},
            ],
        },
    ]
    page = SimpleNamespace(toc=get_toc(tokens))
    out = hooks._readable_notebook_anchors(html, page)
    ids = re.findall(r'<h\d id="([^"]*)"', out)
    assert ids == ["vae-笔记本", "1-数据", "动手改一改", "再改一改", "x", "x_1"]
    assert re.findall(r'class="anchor-link" href="#([^"]*)"', out) == ids
    toc = [page.toc.items[0].id] + [link.id for link in page.toc.items[0].children]
    assert toc == ids
