"""MkDocs hooks for the study site (loaded by path from ``mkdocs.yml``: ``hooks:``).

The site is two plain MkDocs builds, one per language: ``mkdocs.yml`` builds
the Chinese pages (``docs/``) at the site's root, ``mkdocs.en.yml`` inherits
it and builds the English ones (``docs/en/``) into ``en/``. Each has its own
search index, sitemap and 404 page. MkDocs calls these module-level functions
at the matching events of each build:

``on_files``
    Adds MathJax (``tex-svg.js`` and the TeX extensions it autoloads) from
    ``node_modules/mathjax/es5/``, ONNX Runtime Web's WebAssembly build from
    ``node_modules/onnxruntime-web/dist/``, and the build's figures and
    exported models (``models/<name>.onnx`` and its card) from the cache as
    generated files (``docs/`` never holds a copy, no page needs a CDN), and
    points each notebook at its executed copy. Stops the build with advice
    when MathJax or ONNX Runtime Web is not installed.

``on_page_markdown``
    Checks the page's claims about numbers, writes the computed numbers in
    (``[[result.key:format]]``) and, when the build's profile is quick
    (``UNIMODEL_PROFILE``), a warning under the title that the page's numbers
    do not support its text.

``on_page_content``
    On notebook pages, removes the MathJax 2 and mermaid ``<script>`` blocks
    nbconvert adds (both load from a CDN); the site's MathJax typesets the
    notebook's markdown cells. Fails the build if a CDN script survives.
    Gives notebook headings the ids the Markdown pages would give them, the
    same as the table of contents links to (mkdocs-jupyter drops Chinese
    characters from both, differently).

``on_post_build``
    After the Chinese build, builds each translation (``TRANSLATIONS``) into
    its folder of the same site, so that ``mkdocs build`` and ``mkdocs serve``
    make and preview the whole site. It hands the translation the figures and
    numbers this build computed: they are computed once per build.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[3]  # the repository root (src/unimodel/website/ -> ...)
MATHJAX_DIR = ROOT / "node_modules" / "mathjax" / "es5"
MATHJAX_SITE_DIR = "javascripts/mathjax"  # where tex-svg.js lives in the built site
# ONNX Runtime Web, the WebAssembly build only (package.json pins its version): the module the widgets
# import on first use, the loader it imports and the runtime it loads (env.wasm.wasmPaths points here)
ONNXRUNTIME_DIR = ROOT / "node_modules" / "onnxruntime-web" / "dist"
ONNXRUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ONNXRUNTIME_SITE_DIR = "javascripts/onnxruntime"
MODELS_SITE_DIR = "models"  # models/<page>/<name>.onnx and its card, <name>.json
# language -> the configuration that builds its site into the folder of that name
TRANSLATIONS = {"en": "mkdocs.en.yml"}
# the file of figures, numbers and notebooks the Chinese build hands a translation's build
ASSETS_ENV = "UNIMODEL_SITE_ASSETS"

log = get_plugin_logger("unimodel")


def _language(config: MkDocsConfig) -> str:
    """The language this build renders: its theme's ("zh" or "en")."""
    return config.theme["language"]


def _require_npm_file(path: Path, what: str) -> None:
    """Stop the build with a clear message when ``npm ci`` has not been run (or ran before package.json changed)."""
    if not path.is_file():
        raise PluginError(
            f"{what} not found at {path}. The site serves its own {what} from node_modules/: "
            "run `npm ci` in the repository root (or `make setup`), then build again."
        )


# ---------------------------------------------------------------------- on_files


@functools.lru_cache(maxsize=1)
def _site_assets(docs_dir: str) -> dict:
    """Figures, results and executed notebooks, from ``unimodel figures --json``.

    A fresh process, not an import: under ``mkdocs serve`` this process keeps
    the package it imported first, and a figure drawn by stale code must
    never be cached under the key of the new code. Run once per build (the
    hooks module is loaded anew for every build); a translation's build reads
    what the Chinese build computed (``ASSETS_ENV``).
    """
    handed = os.environ.get(ASSETS_ENV)
    if handed:
        return json.loads(Path(handed).read_text(encoding="utf-8"))
    notebooks = sorted(str(p) for p in Path(docs_dir).rglob("*.ipynb"))
    command = [sys.executable, "-m", "unimodel.cli", "figures", "--json", "--notebooks", *notebooks]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=None, text=True)  # progress goes to the terminal
    if done.returncode != 0:
        raise PluginError(f"rendering the figures failed (exit {done.returncode}): {' '.join(command[1:5])} ...")
    return json.loads(done.stdout)


def _add_mathjax(files: Files, config: MkDocsConfig) -> None:
    """``tex-svg.js`` and the TeX extensions it loads, at ``javascripts/mathjax/``."""
    _require_npm_file(MATHJAX_DIR / "tex-svg.js", "MathJax")
    sources = [MATHJAX_DIR / "tex-svg.js", *sorted((MATHJAX_DIR / "input" / "tex" / "extensions").glob("*.js"))]
    for source in sources:
        src_uri = f"{MATHJAX_SITE_DIR}/{source.relative_to(MATHJAX_DIR).as_posix()}"
        files.append(File.generated(config, src_uri, abs_src_path=str(source)))


def _add_onnxruntime(files: Files, config: MkDocsConfig) -> None:
    """ONNX Runtime Web's module and WebAssembly runtime at ``javascripts/onnxruntime/``: no widget needs a CDN."""
    for name in ONNXRUNTIME_FILES:
        _require_npm_file(ONNXRUNTIME_DIR / name, "ONNX Runtime Web")
        files.append(File.generated(config, f"{ONNXRUNTIME_SITE_DIR}/{name}", abs_src_path=str(ONNXRUNTIME_DIR / name)))


def _add_models(files: Files, config: MkDocsConfig, assets: dict) -> None:
    """Each exported model at ``models/<name>.onnx``, and its card (example, PyTorch's outputs, what the widget needs) at ``models/<name>.json``."""
    for name, model in assets["models"].items():
        files.append(File.generated(config, f"{MODELS_SITE_DIR}/{name}.onnx", abs_src_path=model["onnx"]))
        files.append(File.generated(config, f"{MODELS_SITE_DIR}/{name}.json", content=json.dumps(model["card"])))


def _add_figures(files: Files, config: MkDocsConfig, assets: dict) -> None:
    """The build's language's figures, at ``figures/<name>.png``."""
    for name, png in assets["figures"][_language(config)].items():
        files.append(File.generated(config, f"figures/{name}.png", abs_src_path=png))


def _use_executed_notebooks(files: Files, assets: dict) -> None:
    """Render (and offer for download) the executed copy of each notebook."""
    for file in files:
        if file.src_uri.endswith(".ipynb"):
            file.abs_src_path = assets["notebooks"][str(Path(file.abs_src_path))]


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add MathJax and ONNX Runtime Web from node_modules/, the figures and models from the cache (none is ever copied into docs/)."""
    _add_mathjax(files, config)
    _add_onnxruntime(files, config)
    assets = _site_assets(config.docs_dir)
    _add_figures(files, config, assets)
    _add_models(files, config, assets)
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
    """Check the page's claims about computed numbers (``[[? a > b ]]``, see ``unimodel.website.claims``), then write the numbers in: ``[[result.key:format]]``."""
    from unimodel.figures.registry import profile, substitute_results
    from unimodel.website.claims import ClaimError, check_claims

    results, language = _site_assets(config.docs_dir)["results"], _language(config)
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


# ----------------------------------------------------------------- on_post_build


def _build_translation(config: MkDocsConfig, language: str, assets: dict) -> None:
    """Build ``TRANSLATIONS[language]`` into ``<site_dir>/<language>/``, for this site's address plus ``<language>/``."""
    site_dir = Path(config.site_dir) / language
    site_url = (config.site_url or "/").rstrip("/") + f"/{language}/"
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as handed:
        json.dump(assets, handed)
    command = [sys.executable, "-m", "mkdocs", "build", "-f", str(ROOT / TRANSLATIONS[language]), "--site-dir", str(site_dir)]
    if config.strict:
        command.append("--strict")
    log.info("Building the %s site into %s", language, site_dir)
    try:
        env = {**os.environ, ASSETS_ENV: handed.name, f"SITE_URL_{language.upper()}": site_url}  # read by its config
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)  # its log goes to the terminal
    finally:
        os.unlink(handed.name)
    if done.returncode != 0:
        raise PluginError(f"the {language} site did not build (exit {done.returncode}): {' '.join(command[1:])}")


def on_post_build(config: MkDocsConfig) -> None:
    """After the Chinese site, build each translation into its folder."""
    if _language(config) in TRANSLATIONS:
        return  # a translation's own build
    assets = _site_assets(config.docs_dir)
    for language in TRANSLATIONS:
        _build_translation(config, language, assets)
