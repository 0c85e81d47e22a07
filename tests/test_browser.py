"""Every page of the built site in headless Chromium, both languages.

One visit per page (the ``visits`` fixture) records what the tests below
check: the math is typeset by MathJax without errors and no TeX source is
left over, no request goes anywhere but 127.0.0.1, every image loads and has
alt text in the page's language, nothing is logged as an error, and axe-core
finds no serious or critical violation of WCAG 2 A and AA. Then,
once each: the copy button of a code block, the dark-mode toggle, axe-core
on the pages with the most code in the dark palette, and
full-page screenshots of the home page and the VAE chapter in both languages
(``artifacts/screenshots/``, to look at).

The language switch, search in both languages and math after instant
navigation are in test_site.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
LOCAL_HOST = "127.0.0.1"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
CJK_IDEOGRAPH = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
RAW_TEX = ("$$", "\\(", "\\[")  # delimiters MathJax removes from whatever it typesets
TIMEOUT_MS = 20_000
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # pinned in package.json, installed by `make setup`
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass
class Visit:
    """What one page did in the browser."""

    path: str
    language: str  # "zh" or "en", from the path
    html_lang: str = ""
    requests: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)  # requests to other hosts (aborted)
    failed: list[str] = field(default_factory=list)  # HTTP >= 400 or network failures, on 127.0.0.1
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    math: dict = field(default_factory=dict)
    images: list[dict] = field(default_factory=list)
    accessibility: list[str] = field(default_factory=list)  # axe-core's serious and critical violations, one line per element


# Wait until MathJax has typeset the page: mathjax.js chains each typeset on
# MathJax.startup.promise, so wait for that promise until it stops changing.
_WAIT_FOR_MATHJAX = """async (timeout) => {
    const mj = window.MathJax;
    if (!mj || !mj.startup || !mj.startup.promise) return false;
    const deadline = new Promise((_, reject) => setTimeout(() => reject(new Error('MathJax still busy')), timeout));
    let promise;
    do {
        promise = mj.startup.promise;
        await Promise.race([promise, deadline]);
    } while (promise !== mj.startup.promise);
    return true;
}"""

_MATH_STATE = """() => {
    const math = [...document.querySelectorAll('.arithmatex')];
    const errors = [...document.querySelectorAll('mjx-merror, [data-mml-node="merror"]')];
    const root = document.querySelector('article') || document.body;
    const prose = root.cloneNode(true);  // the text a reader sees, without code and typeset math
    prose.querySelectorAll('pre, code, script, style, textarea, mjx-container').forEach(el => el.remove());
    return {
        count: math.length,
        untypeset: math.filter(el => !el.querySelector('mjx-container')).map(el => el.textContent.trim().slice(0, 80)),
        errors: errors.map(el => (el.getAttribute('title') || el.textContent).slice(0, 120)),
        text: prose.textContent,
    };
}"""

_IMAGES = """async () => {
    const images = [...document.images];
    images.forEach(img => { img.loading = 'eager'; });
    await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
        img.addEventListener('load', done);
        img.addEventListener('error', done);
    })));
    return images.map(img => ({src: img.getAttribute('src') || '', alt: img.getAttribute('alt'), width: img.naturalWidth}));
}"""


# axe-core's verdict on the page as it stands: each serious or critical violation, one line per element
_AXE_RUN = """async (tags) => {
    const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
    return result.violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .flatMap(v => v.nodes.map(node => `${v.id} (${v.impact}): ${node.target.join(' ')}: ${node.failureSummary.split('\\n').slice(1, 2).join('').trim()}`));
}"""


def _accessibility(page) -> list[str]:
    """axe-core's serious and critical WCAG 2 A/AA violations on ``page``, injected from node_modules (no request)."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `make setup` (npm ci installs axe-core)", pytrace=False)
    page.add_script_tag(path=str(AXE))
    return page.evaluate(_AXE_RUN, AXE_TAGS)


def _visit(context, base: str, path: str, root: str = "/") -> Visit:
    """Load ``base + path`` in a new tab of ``context`` (a site whose pages live under ``root``) and record what happened."""
    visit = Visit(path=path, language="en" if path.startswith(f"{root}en/") else "zh")
    page = context.new_page()
    responses: list[tuple[int, str]] = []
    console: list[tuple[str, str]] = []
    page.on("request", lambda request: visit.requests.append(request.url))
    page.on("response", lambda response: responses.append((response.status, response.url)))
    page.on("requestfailed", lambda request: visit.failed.append(f"{request.failure} {request.url}") if urlsplit(request.url).hostname == LOCAL_HOST else None)
    page.on("console", lambda message: console.append((message.text, message.location.get("url", ""))) if message.type == "error" else None)
    page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
    try:
        page.goto(base + path, wait_until="networkidle")
        visit.html_lang = page.evaluate("document.documentElement.lang")
        typeset = page.evaluate(_WAIT_FOR_MATHJAX, TIMEOUT_MS)
        visit.math = {**page.evaluate(_MATH_STATE), "mathjax_ran": typeset}
        visit.images = page.evaluate(_IMAGES)
        page.wait_for_load_state("networkidle")
        visit.accessibility = _accessibility(page)
    finally:
        page.close()
    visit.failed += [f"{status} {url}" for status, url in responses if status >= 400]
    visit.console_errors += [f"{text} ({url})" if url else text for text, url in console]
    return visit


@pytest.fixture(scope="module")
def visits(chromium, served_site: str, site_pages: list[str]) -> dict[str, Visit]:
    """Every page of both languages (and both 404 pages), each visited once in a fresh tab."""
    assert {"/", "/en/", "/vae/", "/en/vae/"} <= set(site_pages), site_pages
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    remote: list[str] = []

    def route(route):
        if urlsplit(route.request.url).hostname == LOCAL_HOST:
            route.continue_()
        else:
            remote.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    result = {}
    try:
        for path in [*site_pages, "/404.html", "/en/404.html"]:
            before = len(remote)
            result[path] = _visit(context, served_site, path)
            result[path].remote = remote[before:]
    finally:
        context.close()
    return result


def _fail_on(problems: dict[str, list[str]], title: str, most: int = 8) -> None:
    """Fail with one block per page that has problems, at most ``most`` lines each."""
    blocks = []
    for path, found in problems.items():
        if found:
            lines = [" ".join(line.split()) for line in found[:most]]
            if len(found) > most:
                lines.append(f"... and {len(found) - most} more")
            blocks.append(f"{path}:\n  " + "\n  ".join(lines))
    if blocks:
        pytest.fail(f"{title}:\n" + "\n".join(blocks), pytrace=False)


# ------------------------------------------------------------------ every page


def test_every_page_is_visited_in_its_language(visits: dict[str, Visit], site_pages: list[str]) -> None:
    assert len(site_pages) >= 6 and len(set(site_pages)) == len(site_pages), site_pages
    _fail_on({path: [f"<html lang={v.html_lang!r}>"] for path, v in visits.items() if v.html_lang != v.language}, "pages in the wrong language")
    for path, visit in visits.items():
        assert any(urlsplit(url).path == path for url in visit.requests), f"{path}: the page itself was not requested"


def test_every_math_element_is_typeset_without_errors(visits: dict[str, Visit]) -> None:
    problems = {}
    for path, visit in visits.items():
        math, found = visit.math, []
        if math["count"] and not math["mathjax_ran"]:
            found.append("MathJax did not load, the math is TeX source")
        found += [f"not typeset: {tex}" for tex in math["untypeset"]]
        found += [f"MathJax error: {error}" for error in math["errors"]]
        for delimiter in RAW_TEX:
            at = math["text"].find(delimiter)
            if at >= 0:
                found.append(f"raw {delimiter} in the text: ...{math['text'][max(0, at - 40) : at + 40]!r}...")
        problems[path] = found
    _fail_on(problems, "math that is not typeset")
    for path in ("/vae/", "/en/vae/"):
        assert visits[path].math["count"] >= 10, f"{path}: only {visits[path].math['count']} math elements found"


def test_no_request_goes_anywhere_but_127_0_0_1(visits: dict[str, Visit]) -> None:
    problems = {}
    for path, visit in visits.items():
        seen = visit.requests + visit.remote  # the page's own, and any the context's route aborted (workers too)
        elsewhere = [url for url in seen if not url.startswith(("data:", "blob:")) and urlsplit(url).hostname != LOCAL_HOST]
        problems[path] = sorted(set(elsewhere))
    _fail_on(problems, "requests to other hosts")


def test_every_image_loads_and_has_alt_text_in_the_page_language(visits: dict[str, Visit]) -> None:
    problems = {}
    for path, visit in visits.items():
        found = []
        for image in visit.images:
            name = image["src"][:60]
            alt = (image["alt"] or "").strip()
            if not image["width"] > 0:
                found.append(f"{name}: did not load (natural width 0)")
            if image["src"].startswith("data:"):
                continue  # notebook outputs: nbconvert writes their alt text, in English
            if not alt:
                found.append(f"{name}: no alt text")
            elif visit.language == "zh" and not CJK_IDEOGRAPH.search(alt):
                found.append(f"{name}: alt text {alt!r} has no Chinese characters")
            elif visit.language == "en" and CJK.search(alt):
                found.append(f"{name}: alt text {alt!r} is not English")
        problems[path] = found
    _fail_on(problems, "images")
    for path in ("/vae/", "/en/vae/"):
        assert len(visits[path].images) >= 5, f"{path}: only {len(visits[path].images)} images found"


def test_no_console_error(visits: dict[str, Visit]) -> None:
    _fail_on(
        {
            path: [f"console: {e}" for e in v.console_errors] + [f"page error: {e}" for e in v.page_errors] + [f"failed: {e}" for e in v.failed]
            for path, v in visits.items()
        },
        "errors in the browser",
    )


def test_no_serious_or_critical_accessibility_violation(visits: dict[str, Visit]) -> None:
    _fail_on({path: v.accessibility for path, v in visits.items()}, "axe-core: WCAG 2 A/AA violations")


# --------------------------------------------------------------------- once each


def _wait_for_math(page) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('article .arithmatex')].every(el => el.querySelector('mjx-container'))",
        timeout=TIMEOUT_MS,
    )
    page.evaluate(_WAIT_FOR_MATHJAX, TIMEOUT_MS)


def test_copy_button_puts_exactly_the_code_on_the_clipboard(chromium, served_site: str) -> None:
    context = chromium.new_context(permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(served_site + "/vae/")
        page.evaluate("navigator.clipboard.writeText('nothing copied yet')")
        block = page.locator("article pre").first
        button = block.locator('button[data-md-type="copy"], button.md-clipboard').first
        button.click(timeout=5_000)
        page.wait_for_function("async () => (await navigator.clipboard.readText()) !== 'nothing copied yet'", timeout=5_000)
        copied = page.evaluate("navigator.clipboard.readText()")
        code = block.locator("code").text_content()
        assert code.strip(), "the first code block is empty"
        # Material leaves out the one newline that ends every highlighted block
        assert copied == code.removesuffix("\n"), f"copied {copied!r}\nshown  {code!r}"
    finally:
        context.close()


def test_dark_mode_toggles(chromium, served_site: str) -> None:
    context = chromium.new_context(color_scheme="light")
    try:
        page = context.new_page()
        page.goto(served_site + "/vae/")
        scheme = "() => document.body.getAttribute('data-md-color-scheme')"
        background = "() => getComputedStyle(document.body).backgroundColor"
        toggle = 'form[data-md-component="palette"] label:not([hidden])'
        assert page.evaluate(scheme) == "default"
        light = page.evaluate(background)
        page.click(toggle, timeout=5_000)
        page.wait_for_function(f"({scheme})() === 'slate'", timeout=5_000)
        page.wait_for_function(f"({background})() !== {light!r}", timeout=5_000)
        page.click(toggle, timeout=5_000)
        page.wait_for_function(f"({scheme})() === 'default'", timeout=5_000)
        page.wait_for_function(f"({background})() === {light!r}", timeout=5_000)
    finally:
        context.close()


def test_the_dark_palette_passes_axe_core_where_the_code_is(chromium, served_site: str) -> None:
    """The dark palette recolours code: the pages with the most of it, and a notebook, through axe-core."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    problems = {}
    try:
        for path in ("/api/", "/blip/", "/vae-notebook/", "/en/api/"):
            page = context.new_page()
            page.goto(served_site + path, wait_until="networkidle")
            assert page.evaluate("document.body.getAttribute('data-md-color-scheme')") == "slate"
            problems[path] = _accessibility(page)
            page.close()
    finally:
        context.close()
    _fail_on(problems, "axe-core, dark palette: WCAG 2 A/AA violations")


@pytest.mark.parametrize(("name", "path"), [("zh-home", "/"), ("zh-vae", "/vae/"), ("en-home", "/en/"), ("en-vae", "/en/vae/")])
def test_screenshot(chromium, served_site: str, name: str, path: str) -> None:
    """Full-page screenshots to look at, in artifacts/screenshots/."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    try:
        page = context.new_page()
        page.goto(served_site + path, wait_until="networkidle")
        if path.endswith("vae/"):
            _wait_for_math(page)
        page.evaluate("document.fonts.ready.then(() => true)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        out = SCREENSHOTS / f"{name}.png"
        out.unlink(missing_ok=True)
        page.screenshot(path=str(out), full_page=True)
        assert out.stat().st_size > 10_000, f"{out} is suspiciously small"
    finally:
        context.close()
