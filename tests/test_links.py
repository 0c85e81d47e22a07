"""Links and structure of the built site, read with the stdlib HTML parser.

Every internal ``<a href>``, ``<img src>``, ``<link href>`` and ``<script src>``
of every built page (both languages, 404 pages included) names a file of the
site, and every ``#anchor`` names an element id of its target page. Every page
in ``docs/`` is in the navigation of ``mkdocs.yml``.
"""

from __future__ import annotations

import json
import posixpath
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import twins
from twins import CONFIGS, nav_files

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINKS = {"a": "href", "img": "src", "link": "href", "script": "src"}


class _Page(HTMLParser):
    """The links (tag, url) and the element ids of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self.canonical: str | None = None
        self.language_links: list[tuple[str, str]] = []  # (hreflang, href)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "name" in values:  # the old way to name an anchor
            self.ids.add(values["name"])
        wanted = LINKS.get(tag)
        if wanted and values.get(wanted) is not None:
            self.links.append((tag, values[wanted]))
        if tag == "link" and values.get("rel") == "canonical":
            self.canonical = values.get("href")
        if tag in ("a", "link") and values.get("hreflang") and "href" in values:
            self.language_links.append((values["hreflang"], values["href"]))


def parse_site(site: Path) -> dict[str, _Page]:
    """Every HTML file of ``site``, parsed, by its path relative to the site ("vae/index.html")."""
    pages = {}
    for html in sorted(site.rglob("*.html")):
        page = _Page()
        page.feed(html.read_text(encoding="utf-8"))
        page.close()
        pages[html.relative_to(site).as_posix()] = page
    return pages


def _site_root(pages: dict[str, _Page]) -> str:
    """The site's own address (``site_url``), from the home page's canonical link."""
    home = pages.get("index.html")
    if home is None or not home.canonical:
        raise AssertionError("the built home page has no canonical link, so the site's address is unknown")
    return home.canonical


def _target_file(site: Path, path: str) -> Path | None:
    """The file a site path is served from ("/vae/" -> vae/index.html), or None."""
    rel = unquote(path).lstrip("/")
    target = site / rel
    if rel == "" or rel.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None


def broken_links(site: Path) -> list[str]:
    """Every internal link of the site that names no file, or an id its page lacks.

    A link is internal when it is relative, absolute to the site's root
    ("/vae/"), or a full address on the site's own host and path (its
    canonical address). Other hosts, ``mailto:``, ``data:`` and the like
    are not the site's to check.
    """
    pages = parse_site(site)
    root = urlsplit(_site_root(pages))
    root_path = root.path if root.path.endswith("/") else root.path + "/"
    problems = []
    for rel, page in pages.items():
        base = f"{root.scheme}://{root.netloc}{root_path}{rel}"
        for tag, url in page.links:
            url = url.strip()
            if not url or url.startswith(("data:", "mailto:", "javascript:", "tel:")):
                continue
            absolute = urlsplit(urljoin(base, url))
            if absolute.scheme not in ("http", "https") or absolute.netloc != root.netloc:
                continue  # another host
            path = posixpath.normpath(absolute.path) + ("/" if absolute.path.endswith("/") else "")
            if not path.startswith(root_path):
                problems.append(f"{rel}: <{tag}> {url} leaves the site ({path})")
                continue
            target = _target_file(site, path[len(root_path) :])
            if target is None:
                problems.append(f"{rel}: <{tag}> {url} -> {path}: no such file")
                continue
            fragment = unquote(absolute.fragment)
            if fragment and target.suffix == ".html":
                target_rel = target.relative_to(site).as_posix()
                if fragment not in pages[target_rel].ids:
                    problems.append(f"{rel}: <{tag}> {url} -> {target_rel} has no element with id {fragment!r}")
    return problems


# ------------------------------------------------------------- the built site


def test_every_internal_link_and_anchor_resolves(built_site: Path) -> None:
    pages = parse_site(built_site)
    assert "index.html" in pages and "en/index.html" in pages
    counted = sum(len(page.links) for page in pages.values())
    assert counted > 100, f"only {counted} links found: is the parser reading the pages?"
    problems = broken_links(built_site)
    assert not problems, f"{len(problems)} broken links:\n" + "\n".join(problems)


def test_both_languages_link_to_their_own_pages(built_site: Path) -> None:
    """Each language's in-page anchors are checked: the English VAE chapter has its own ids."""
    pages = parse_site(built_site)
    for rel in ("vae/index.html", "en/vae/index.html"):
        anchors = [url for tag, url in pages[rel].links if tag == "a" and url.startswith("#") and len(url) > 1]
        assert len(anchors) >= 5, f"{rel}: too few in-page anchors ({anchors}) to be checking anything"


def test_search_results_lead_to_existing_anchors(built_site: Path) -> None:
    """A search hit opens its page at a heading: each index location is a page and an id of it."""
    pages = parse_site(built_site)
    problems = []
    for root in ("", "en/"):
        index = json.loads((built_site / root / "search" / "search_index.json").read_text(encoding="utf-8"))
        for doc in index["docs"]:
            path, _, fragment = doc["location"].partition("#")
            target = _target_file(built_site, root + path)
            if target is None:
                problems.append(f"{root}search: {doc['location']}: no such page")
            elif fragment and unquote(fragment) not in pages[target.relative_to(built_site).as_posix()].ids:
                problems.append(f"{root}search: {doc['location']}: no element with id {fragment!r}")
    assert not problems, "\n".join(problems)


def test_404_pages_switch_language_to_the_home_pages(built_site: Path) -> None:
    """There is no twin of a missing page: each 404 page's language links go to the language homes."""
    pages = parse_site(built_site)
    site = _site_root(pages)
    homes = {"zh": site, "en": urljoin(site, "en/")}
    for rel in ("404.html", "en/404.html"):
        links = pages[rel].language_links
        assert {language for language, _ in links} == set(homes), f"{rel}: language links {links}"
        wrong = [(language, href) for language, href in links if urljoin(site, href) != homes[language]]
        assert not wrong, f"{rel}: language links that do not go to the language's home: {wrong}"


# ------------------------------------------------------------- the checker itself


def _write_site(tmp_path: Path, files: dict[str, str]) -> Path:
    site = tmp_path / "site"
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text, encoding="utf-8")
    return site


_HOME = '<html><head><link rel="canonical" href="http://127.0.0.1:9/"></head><body>{}</body></html>'


def test_the_checker_finds_missing_files_and_anchors(tmp_path: Path) -> None:
    site = _write_site(
        tmp_path,
        {
            "index.html": _HOME.format(
                '<a href="a/">ok</a><a href="a/#sec">ok</a><a href="a/#%E5%8F%98%E5%88%86">ok, escaped</a>'
                '<a href="/a/">ok</a><a href="http://127.0.0.1:9/a/">ok</a><a href="https://example.org/x">other host</a>'
                '<a href="#">top</a><img src="data:image/png;base64,xx">'
                '<a href="b/">missing page</a><a href="a/#nope">missing anchor</a>'
                '<img src="img/x.png"><script src="js/gone.js"></script><link rel="stylesheet" href="../../outside.css">'
            ),
            "a/index.html": '<h2 id="sec">s</h2><h2 id="变分">v</h2><a href="../#">home</a><a href="#sec">self</a>',
        },
    )
    problems = broken_links(site)
    assert len(problems) == 5, problems
    for expected in ("b/", "'nope'", "img/x.png", "js/gone.js", "outside.css"):
        assert any(expected in problem for problem in problems), (expected, problems)


# ------------------------------------------------------------------ navigation


def _docs_pages(language: str) -> list[str]:
    """The pages of one language (``.md`` and ``.ipynb``), relative to its docs folder."""
    folder = DOCS if language == "zh" else twins.EN_DOCS
    return [p.relative_to(folder).as_posix() for p in twins.pages(language, "*") if p.suffix in (".md", ".ipynb")]


def _config_nav(language: str = "zh") -> list[str]:
    nav = twins.config_nav(language)
    assert nav, f"{CONFIGS[language]} has no nav"
    return nav_files(nav)


def test_every_page_is_in_the_navigation() -> None:
    for language in CONFIGS:
        pages, nav = _docs_pages(language), _config_nav(language)
        assert pages, f"no {language} pages"
        missing = sorted(set(pages) - set(nav))
        assert not missing, f"{language} pages that are in no nav entry of {CONFIGS[language]}: {missing}"


def test_both_languages_list_the_same_pages_in_the_same_order() -> None:
    zh, en = _config_nav("zh"), _config_nav("en")
    assert zh == en, f"the navigations of {CONFIGS['zh']} and {CONFIGS['en']} differ"
    for entry in zh:
        assert (DOCS / entry).is_file(), f"nav names {entry}, which is not in docs/"
        assert (twins.EN_DOCS / entry).is_file(), f"{entry} has no English twin docs/en/{entry}"


def test_every_nav_page_is_built_in_both_languages(built_site: Path) -> None:
    for entry in _config_nav():
        stem = entry.rsplit(".", 1)[0]
        page = "index.html" if stem == "index" else f"{stem.removesuffix('/index')}/index.html"
        for prefix in ("", "en/"):
            assert (built_site / prefix / page).is_file(), f"{entry} was not built at {prefix}{page}"


def test_nav_files_reads_nested_sections() -> None:
    nav = [{"Home": "index.md"}, {"Part": [{"A": "a.md"}, "b.ipynb", {"Web": "https://example.org/"}]}]
    assert nav_files(nav) == ["index.md", "a.md", "b.ipynb"]
