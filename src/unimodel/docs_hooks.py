"""MkDocs hooks for the study site (loaded by path from ``mkdocs.yml``: ``hooks:``).

MkDocs calls these module-level functions at the matching build events. The
i18n plugin builds the site once per language (zh into ``site/``, en into
``site/en/``), the second pass from inside the first one's ``on_post_build``,
so every hook runs once per language.

What each hook does:

``on_config``
    1. Stops the build, with a message that says to run ``npm ci`` (or
       ``make setup``), when MathJax is not in ``node_modules/``.
    2. Gives the search plugin the settings of the language being built
       (``SEARCH``), so that neither language's search breaks the other's.
    3. Makes the i18n plugin keep ``.ipynb`` files as pages (mkdocs-static-i18n
       issue #198: otherwise a notebook is copied into the site as raw JSON).
    4. Silences one i18n warning that does not apply here (the language links
       after instant navigation are kept right by ``docs/javascripts/language.js``).

``on_files``
    Adds MathJax (``tex-svg.js`` and the TeX extensions it autoloads) from
    ``node_modules/mathjax/es5/`` to the site as generated files: ``docs/``
    never holds a copy, no page needs a CDN.

``on_page_markdown``
    Writes the computed numbers into the page (``[[result.key:format]]``)
    and, when the build's profile is quick (``UNIMODEL_PROFILE``), a warning
    under the title that the page's numbers do not support its text.

``on_page_content``
    On notebook pages, removes the MathJax 2 and mermaid ``<script>`` blocks
    nbconvert adds (both load from a CDN); the site's MathJax typesets the
    notebook's markdown cells. Fails the build if a CDN script survives.
    Gives notebook headings the ids the Markdown pages would give them, the
    same as the table of contents links to (mkdocs-jupyter drops Chinese
    characters from both, differently).

``on_post_page``, ``on_post_template``, ``on_post_build``
    Give each language its own search index, sitemap and 404 page under its
    own root, and point English pages' ``__config.base`` at ``/en/`` (see the
    comment above ``on_post_page``).
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]  # the repository root (src/unimodel/ -> ..)
MATHJAX_DIR = ROOT / "node_modules" / "mathjax" / "es5"
MATHJAX_SITE_DIR = "javascripts/mathjax"  # where tex-svg.js lives in the built site

# Search settings per language (one index each, see on_post_build).
#
# No "stemmer" in either pipeline: with lunr's English stemmer in it, Material's
# search (which turns each query term into a prefix query) finds nothing for
# "reparameterization" or "variational" (checked in Chromium; "trick" still
# matched). Material's Chinese defaults (lang en + stemmer) thus break the
# English words on Chinese pages. Chinese text is cut into words by jieba at
# build time (Material does it when jieba is installed) and joined with
# U+200B, which the Chinese separator splits on; the trimmer of lunr's zh + en
# keeps the CJK characters that the English trimmer alone would strip.
SEARCH = {
    "zh": {
        "lang": ["zh", "en"],
        "separator": r'[\s\u200b\u3000\-、。，．？！；：（）“”‘’《》,:;!?=\[\]()"/]+|\.(?!\d)|&[lg]t;',
        "pipeline": ["stopWordFilter", "trimmer"],
    },
    "en": {
        "lang": ["en"],
        "separator": r'[\s\-,:;!?=\[\]()"/]+|\.(?!\d)|&[lg]t;',
        "pipeline": ["stopWordFilter", "trimmer"],
    },
}


def _i18n(config: MkDocsConfig):
    """The mkdocs-static-i18n plugin instance, or None when it is not enabled."""
    return config.plugins.get("i18n")


def _current_language(config: MkDocsConfig) -> str:
    """The language this pass of the build renders ("zh" for the default pass)."""
    i18n = _i18n(config)
    if i18n is None:
        return "zh"
    return i18n.current_language or i18n.default_language


# --------------------------------------------------------------------- on_config


def _require_mathjax() -> None:
    """Stop the build with a clear message when ``npm ci`` has not been run."""
    if not (MATHJAX_DIR / "tex-svg.js").is_file():
        raise PluginError(
            f"MathJax not found at {MATHJAX_DIR / 'tex-svg.js'}. "
            "The site serves its own MathJax from node_modules/: run `npm ci` "
            "in the repository root (or `make setup`), then build again."
        )


def _configure_search(config: MkDocsConfig) -> None:
    """Set lang/separator/pipeline of the search plugin for the language being built.

    Runs before the search plugin's own ``on_config``, which only fills in
    settings that are still empty.
    """
    search = config.plugins.get("material/search") or config.plugins.get("search")
    if search is None:
        return
    settings = SEARCH.get(_current_language(config), SEARCH["en"])
    search.config.lang = list(settings["lang"])
    search.config.separator = settings["separator"]
    search.config.pipeline = list(settings["pipeline"])


class NotebookPageFile(File):
    """A ``.ipynb`` file the i18n plugin has localized, kept a documentation page."""

    def is_documentation_page(self) -> bool:
        return True


def _keep_notebooks_as_pages() -> None:
    """Make the i18n plugin's localized copy of a notebook stay a page.

    mkdocs-jupyter marks notebooks as pages in its ``on_files``; the i18n
    plugin then rebuilds every file as a plain ``File`` (``.ipynb`` is not
    Markdown, so it becomes an asset and is copied as JSON). Wrapping its file
    factory keeps notebooks pages *before* it sorts pages from assets, so
    ``x.ipynb`` / ``x.en.ipynb`` get the same language handling (alternates,
    language switcher, sitemap) as ``x.md`` / ``x.en.md``.
    """
    from mkdocs_static_i18n import folder, suffix

    for module in (suffix, folder):
        create = module.create_i18n_file
        if getattr(create, "keeps_notebooks", False):
            continue

        @functools.wraps(create)
        def create_i18n_file(file, *args, _create=create, **kwargs):
            i18n_file = _create(file, *args, **kwargs)
            if i18n_file.src_uri.endswith(".ipynb"):
                i18n_file.__class__ = NotebookPageFile
            return i18n_file

        create_i18n_file.keeps_notebooks = True
        module.create_i18n_file = create_i18n_file


class _DropMessage(logging.Filter):
    """Drop log records whose message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


_INSTANT_WARNING = _DropMessage("mkdocs-material language switcher contextual link is not compatible")


def _silence_instant_navigation_warning() -> None:
    """The i18n plugin warns that its per-page language links go stale under
    ``navigation.instant`` (the header is not re-rendered). ``language.js``
    re-points them after every navigation, so the warning, which would fail
    ``--strict``, does not apply."""
    logger = logging.getLogger("mkdocs.plugins.mkdocs_static_i18n.reconfigure")
    if _INSTANT_WARNING not in logger.filters:
        logger.addFilter(_INSTANT_WARNING)


@event_priority(100)  # before the search plugin (0) and the i18n plugin (-100)
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    _require_mathjax()
    _configure_search(config)
    _keep_notebooks_as_pages()
    _silence_instant_navigation_warning()
    return config


# ---------------------------------------------------------------------- on_files


@functools.lru_cache(maxsize=1)
def _site_assets(docs_dir: str) -> dict:
    """Figures, results and executed notebooks, from ``unimodel figures --json``.

    A fresh process, not an import: under ``mkdocs serve`` this process keeps
    the package it imported first, and a figure drawn by stale code must
    never be cached under the key of the new code. Run once per build (the
    hooks module is loaded anew for every build; the i18n passes share it).
    """
    notebooks = sorted(str(p) for p in Path(docs_dir).rglob("*.ipynb"))
    command = [sys.executable, "-m", "unimodel.cli", "figures", "--json", "--notebooks", *notebooks]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=None, text=True)  # progress goes to the terminal
    if done.returncode != 0:
        raise PluginError(f"rendering the figures failed (exit {done.returncode}): {' '.join(command[1:5])} ...")
    return json.loads(done.stdout)


def _add_figures(files: Files, config: MkDocsConfig, assets: dict) -> None:
    """Each language's figures at ``figures/<name>.png`` under that language's root."""
    language = _current_language(config)
    root = _language_root(config, language)
    for name, png in assets["figures"][language].items():
        figure = File.generated(config, f"figures/{name}.png", abs_src_path=png)
        figure.dest_uri = root + figure.dest_uri
        files.append(figure)


def _use_executed_notebooks(files: Files, assets: dict) -> None:
    """Render (and offer for download) the executed copy of each notebook."""
    for file in files:
        if file.src_uri.endswith(".ipynb"):
            file.abs_src_path = assets["notebooks"][str(Path(file.abs_src_path))]


@event_priority(-200)  # after the i18n plugin (-100) has localized the docs files
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add MathJax from node_modules/ and the figures from the cache (neither is ever copied into docs/)."""
    sources = [MATHJAX_DIR / "tex-svg.js", *sorted((MATHJAX_DIR / "input" / "tex" / "extensions").glob("*.js"))]
    for source in sources:
        src_uri = f"{MATHJAX_SITE_DIR}/{source.relative_to(MATHJAX_DIR).as_posix()}"
        if files.get_file_from_path(src_uri) is None:
            files.append(File.generated(config, src_uri, abs_src_path=str(source)))
    assets = _site_assets(config.docs_dir)
    _add_figures(files, config, assets)
    _use_executed_notebooks(files, assets)
    return files


# at the top of a page with computed numbers or figures, when the build's profile is "quick"
QUICK_NOTICE = {
    "zh": '!!! warning "快速构建"\n    本页用 `UNIMODEL_PROFILE=quick` 构建：每个模型只训练了几轮，'
    "页面上的数字和图只用来检查构建能否走通，不代表正文的结论。完整版本请用 `make site` 或 `make serve` 构建。\n",
    "en": '!!! warning "Quick build"\n    This page was built with `UNIMODEL_PROFILE=quick`: every model trained for a few '
    "epochs only, so its numbers and figures check that the build works and do not support the text. "
    "Build the full version with `make site` or `make serve`.\n",
}


def _with_quick_notice(markdown: str, language: str) -> str:
    """``markdown`` with the quick-build warning after its title, if it shows anything computed."""
    from unimodel.figures.registry import PLACEHOLDER, profile

    if profile() != "quick" or not (PLACEHOLDER.search(markdown) or "](figures/" in markdown):
        return markdown
    title, newline, body = markdown.partition("\n") if markdown.startswith("# ") else ("", "", markdown)
    return f"{title}{newline}\n{QUICK_NOTICE[language]}\n{body}"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Check the page's claims about computed numbers (``[[? a > b ]]``, see ``unimodel.claims``), then write the numbers in: ``[[result.key:format]]``."""
    from unimodel.claims import ClaimError, check_claims
    from unimodel.figures.registry import profile, substitute_results

    results, language = _site_assets(config.docs_dir)["results"], _current_language(config)
    try:
        markdown = check_claims(markdown, results, page.file.src_uri, language, strict=profile() != "quick")
        markdown = substitute_results(markdown, results, page.file.src_uri)
    except ClaimError as error:
        raise PluginError(str(error)) from None
    except KeyError as error:
        raise PluginError(str(error.args[0])) from None
    return _with_quick_notice(markdown, language)


# --------------------------------------------------------------- on_page_content

# nbconvert's MathJax 2 block (base/mathjax.html.j2) and mermaid block
# (base/mermaidjs.html.j2): both fetch from cdnjs.cloudflare.com.
_NBCONVERT_CDN_BLOCKS = (
    re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S),
    re.compile(
        r'<script type="module">\s*document\.addEventListener\("DOMContentLoaded".*?'
        r"<!-- End of mermaid configuration -->",
        re.S,
    ),
)
_REMOTE_SCRIPT = re.compile(r"""<script[^>]+src=["']?(?:https?:)?//""", re.I)


# A heading as nbconvert writes it (mkdocs-jupyter's patched renderer):
# <h2 id="1">1. 数据<a class="anchor-link" href="#1">¶</a></h2>
_NOTEBOOK_HEADING = re.compile(r'(<h([1-6])\b[^>]*?\bid=")([^"]*)("[^>]*>)(.*?)(</h\2>)', re.S)
_UNIQUE_SUFFIX = re.compile(r"_\d+$")


def _toc_links(items) -> list:
    """The AnchorLinks of a table of contents, in document order."""
    links = []
    for item in items:
        links.append(item)
        links += _toc_links(item.children)
    return links


def _readable_notebook_anchors(html: str, page: Page) -> str:
    """Give a notebook page's headings the same ids as its table of contents, readable ones.

    mkdocs-jupyter builds the table of contents with Python-Markdown's default
    slugify and the headings' ids with its own; both drop every non-ASCII
    character, so a Chinese heading gets ``id=""`` while the contents link to
    ``#_1`` (a link to nowhere), and "1. 数据" becomes ``#1``. Here both take the
    id the Markdown pages use (``toc.slugify`` in mkdocs.yml: lower case, CJK
    kept), each heading matched to its entry of the contents in order.
    """
    from html import unescape

    from markdown.extensions.toc import unique
    from pymdownx.slugs import slugify

    slug = slugify(case="lower")
    headings = [match.group(3) for match in _NOTEBOOK_HEADING.finditer(html)]  # their ids now
    new_ids: dict[int, str] = {}  # heading index -> its new id
    used: set[str] = set()
    position = 0
    for link in _toc_links(page.toc or []):
        # the contents make repeated ids unique ("x", "x_1"), nbconvert does not ("x", "x")
        wanted = {link.id, _UNIQUE_SUFFIX.sub("", link.id)}
        index = next((i for i in range(position, len(headings)) if headings[i] in wanted), None)
        if index is None:
            continue  # a heading the contents list but the cells do not show as one: leave it
        link.id = new_ids[index] = unique(slug(unescape(link.title), "-"), used)
        position = index + 1

    counter = iter(range(len(headings)))

    def rename(match: re.Match) -> str:
        index = next(counter)
        if index not in new_ids:
            return match.group(0)
        old, new = match.group(3), new_ids[index]
        inner = match.group(5).replace(f'class="anchor-link" href="#{old}"', f'class="anchor-link" href="#{new}"', 1)
        return f"{match.group(1)}{new}{match.group(4)}{inner}{match.group(6)}"

    return _NOTEBOOK_HEADING.sub(rename, html)


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Strip nbconvert's CDN scripts from notebook pages; give their headings readable ids."""
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    for block in _NBCONVERT_CDN_BLOCKS:
        html = block.sub("", html)
    if _REMOTE_SCRIPT.search(html) or "cdnjs.cloudflare.com" in html:
        raise PluginError(
            f"{page.file.src_uri}: the rendered notebook still loads a script from a CDN; "
            "nbconvert's template changed, update _NBCONVERT_CDN_BLOCKS in docs_hooks.py"
        )
    return _readable_notebook_anchors(html, page)


# ------------------------------------------------- one site per language, in full
#
# The i18n plugin builds every language into one site directory and, left
# alone, shares a few files between them: one search index (with the search
# settings of whichever language was built last), one sitemap listing every
# language, one 404 page (the last language's). The hooks below give each
# language its own, under its own root (``/`` for zh, ``/en/`` for en), and
# point Material's ``__config.base`` of each page at that root: Material looks
# for ``search/search_index.json`` and ``sitemap.xml`` relative to it, and
# its instant navigation only follows links listed in that sitemap, so going
# to another language is a full page load that brings that language's search.

_CONFIG_SCRIPT = re.compile(r'(<script id="__config" type="application/json">)(.*?)(</script>)', re.S)
_SITEMAP_URL = re.compile(r"\s*<url>.*?</url>", re.S)
_SITEMAP_LOC = re.compile(r"<loc>(.*?)</loc>")
_404_pages: dict[str, str] = {}  # language -> rendered 404.html, kept until on_post_build


def _language_root(config: MkDocsConfig, language: str) -> str:
    """The site path of a language's root: "" for the default language, "en/" for en."""
    i18n = _i18n(config)
    if i18n is None or language == i18n.default_language:
        return ""
    return i18n.get_language_config(language).link.strip("/") + "/"


def _rebase(html: str, base: str) -> str:
    """Set ``base`` in Material's ``<script id="__config">`` JSON."""

    def replace(match: re.Match) -> str:
        data = json.loads(match.group(2))
        data["base"] = base
        text = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")  # never "</script>"
        return match.group(1) + text + match.group(3)

    return _CONFIG_SCRIPT.sub(replace, html, count=1)


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    """Point an English page's ``__config.base`` at ``/en/`` instead of ``/``."""
    root = _language_root(config, _current_language(config))
    if not root:
        return output
    from mkdocs.utils import get_relative_url

    return _rebase(output, get_relative_url(root, page.url).rstrip("/") or ".")


_LANGUAGE_LINK = re.compile(r'<(?:link|a)\b[^>]*\bhreflang="([^"]+)"[^>]*>')
_HREF = re.compile(r'\bhref="[^"]*"')


def _language_links_to_roots(html: str, config: MkDocsConfig) -> str:
    """Point every ``hreflang`` link (``<link rel="alternate">``, the header's
    language switch) at that language's home page.

    A 404 page is rendered after the pages and inherits the language links of
    the last one (the English 404 page switched to the VAE chapter); the
    page that is missing has no twin, so the other language's home it is.
    """
    site_path = urlsplit(config.site_url or "/").path.rstrip("/") + "/"

    def replace(match: re.Match) -> str:
        href = f'href="{site_path}{_language_root(config, match.group(1))}"'
        return _HREF.sub(href, match.group(0), count=1)

    return _LANGUAGE_LINK.sub(replace, html)


def on_post_template(output: str, template_name: str, config: MkDocsConfig) -> str:
    """Keep each language's 404 page (every pass writes ``site/404.html``)."""
    if template_name == "404.html":
        language = _current_language(config)
        root = _language_root(config, language)
        found = _CONFIG_SCRIPT.search(output)
        if root and found:  # 404.html links absolutely: its base is the site's path, "/"
            output = _rebase(output, json.loads(found.group(2))["base"].rstrip("/") + "/" + root)
        if _i18n(config) is not None:
            output = _language_links_to_roots(output, config)
        _404_pages[language] = output
    return output


def _write_search_index(search, entries: list[dict], language: str, root: str, out: Path) -> None:
    """One language's search index, locations relative to its root, its SEARCH settings."""
    docs = [{**entry, "location": entry["location"][len(root) :]} for entry in entries]
    index = {"config": {**SEARCH.get(language, SEARCH["en"]), "fields": search.config.fields}, "docs": docs}
    (out / "search").mkdir(parents=True, exist_ok=True)
    (out / "search" / "search_index.json").write_text(json.dumps(index, separators=(",", ":"), default=str), encoding="utf-8")


def _write_sitemap(sitemap: str, keep, out: Path) -> None:
    """The ``<url>`` entries of ``sitemap`` whose site path ``keep`` accepts, as sitemap.xml(.gz)."""

    def filter_url(match: re.Match) -> str:
        loc = _SITEMAP_LOC.search(match.group(0))
        return match.group(0) if loc and keep(urlsplit(loc.group(1)).path) else ""

    text = _SITEMAP_URL.sub(filter_url, sitemap)
    (out / "sitemap.xml").write_text(text, encoding="utf-8")
    (out / "sitemap.xml.gz").write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


@event_priority(-150)  # after the i18n plugin (-100), which builds the other languages in its on_post_build
def on_post_build(config: MkDocsConfig) -> None:
    """Write each language's search index, sitemap and 404 page under its root."""
    i18n = _i18n(config)
    if i18n is None or i18n.building:
        return  # a pass the i18n plugin runs inside the first one, which ends last
    site = Path(config.site_dir)
    site_path = urlsplit(config.site_url or "/").path  # "/" or e.g. "/notes/"
    roots = {language: _language_root(config, language) for language in i18n.build_languages}

    def language_of(path: str) -> str:
        """The language of a site path relative to the site root ("en/vae/" -> "en")."""
        for language, root in roots.items():
            if root and path.startswith(root):
                return language
        return i18n.default_language

    search = config.plugins.get("material/search") or config.plugins.get("search")
    entries = list(search.search_index.entries) if search is not None else []  # every language's
    sitemap_file = site / "sitemap.xml"
    sitemap = sitemap_file.read_text(encoding="utf-8") if sitemap_file.is_file() else None

    for language, root in roots.items():
        out = site / root
        if search is not None:
            mine = [entry for entry in entries if language_of(entry["location"]) == language]
            _write_search_index(search, mine, language, root, out)
        if sitemap is not None:
            _write_sitemap(sitemap, lambda path, language=language: language_of(path.removeprefix(site_path)) == language, out)
        if language in _404_pages:
            (out / "404.html").write_text(_404_pages[language], encoding="utf-8")
