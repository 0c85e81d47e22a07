"""The widgets: the chapters' trained models in the reader's browser (ONNX Runtime Web), both languages.

For every widget of the built site: a page's first load fetches neither the
runtime nor a model; a scripted interaction (a drag, a key, a button)
changes what the widget shows; nothing is requested from anywhere but
127.0.0.1 and nothing is logged as an error; ONNX Runtime Web gives
PyTorch's outputs on the model card's example within the card's tolerance;
axe-core finds no serious or critical violation in the mounted widget, in
the light and the dark palette. The diffusion widget's own reverse chain
(JavaScript) reproduces the chapter's ``sample_chain``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_browser import AXE, AXE_TAGS, LOCAL_HOST

from unimodel.figures import registry

pytestmark = pytest.mark.browser

WIDGET = re.compile(r'<div class="unimodel-widget" data-widget="([a-z0-9-]+)" data-model="([a-z0-9/ -]+)"></div>')
TIMEOUT_MS = 30_000


def _widgets(built_site: Path) -> list[tuple[str, str, str]]:
    """(page path, widget kind, model name) of every model of every widget in the built site, both languages."""
    found = []
    for html in sorted(built_site.rglob("index.html")):
        for kind, models in WIDGET.findall(html.read_text(encoding="utf-8")):
            found += [("/" + html.parent.relative_to(built_site).as_posix() + "/", kind, model) for model in models.split()]
    return found


def test_every_exported_model_has_its_widget_in_both_languages(built_site: Path) -> None:
    registry.load_chapters()
    widgets = _widgets(built_site)
    for language in ("zh", "en"):
        shown = {model for path, _, model in widgets if path.startswith("/en/") == (language == "en")}
        assert shown == set(registry.EXPORTS), language
    for path, _, model in widgets:
        page = path.removeprefix("/en/").strip("/")
        assert model.split("/")[0] == page, f"{model} is shown on {path}, not on its own chapter's page"
        assert (built_site / "models" / f"{model}.onnx").is_file() and (built_site / "en" / "models" / f"{model}.json").is_file()


def _output(page) -> str:
    """What the widget shows: every canvas's pixels and every readout's text."""
    return page.evaluate(
        """() => {
            const root = document.querySelector('.unimodel-widget');
            const canvases = [...root.querySelectorAll('canvas')].map(c => c.toDataURL());
            const text = [...root.querySelectorAll('output, .unimodel-widget__bar-value')].map(o => o.textContent);
            return JSON.stringify([canvases, text]);
        }"""
    )


def _drag(page, canvas, start, end) -> None:
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=6)
    page.mouse.up()


def _use(page, kind: str) -> None:
    """What a reader does with a widget of ``kind``: drag on its canvas, press keys, press its button."""
    widget = page.locator(".unimodel-widget")
    if kind == "vae-latent":
        _drag(page, widget.locator("canvas").first, (0.2, 0.2), (0.8, 0.7))
    elif kind == "vit-draw":
        widget.get_by_role("button").first.click()  # clear
        _drag(page, widget.locator("canvas").first, (0.5, 0.1), (0.5, 0.9))  # a 1
    elif kind == "unified-model":
        widget.get_by_role("textbox").fill("three")  # either language's name, on either page
        widget.get_by_role("slider").fill("5")
        widget.get_by_role("button", name=re.compile("Draw it|画出来")).click()
        page.wait_for_function("() => !document.querySelector('.unimodel-widget button').disabled", timeout=TIMEOUT_MS)
    elif kind == "clip-prompts":
        widget.get_by_role("textbox").first.fill("数字七")  # a training caption's wording, in Chinese on either page
    elif kind == "pixelcnn-sampler":
        widget.get_by_role("button").nth(1).click()  # draw the next pixel
    elif kind == "gan-rejection":
        widget.get_by_role("button").first.click()  # draw again
    elif kind == "diffusion-chain":
        widget.get_by_role("button").first.click()  # denoise
        page.wait_for_function("() => !document.querySelector('.unimodel-widget button').disabled", timeout=TIMEOUT_MS)
    elif kind == "flow-euler":
        widget.get_by_role("slider").fill("4")  # four Euler steps
    else:
        raise AssertionError(f"no scripted interaction for the widget {kind!r}: add one here")


def _wait_until_ready(page) -> str:
    page.wait_for_function(
        "() => { const s = document.querySelector('.unimodel-widget__status'); return s && s.textContent && !s.textContent.includes('…'); }",
        timeout=TIMEOUT_MS,
    )
    return page.locator(".unimodel-widget__status").text_content()


def _axe(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async (tags) => (await axe.run('.unimodel-widget', {runOnly: {type: 'tag', values: tags}})).violations
            .filter(v => ['serious', 'critical'].includes(v.impact))
            .flatMap(v => v.nodes.map(node => `${v.id}: ${node.target.join(' ')}`))""",
        AXE_TAGS,
    )


ROOT = Path(__file__).resolve().parents[1]


def _widgets_in_sources() -> list[tuple[str, str, tuple[str, ...]]]:
    """(page path, widget kind, its models) of every widget the pages' sources show, both languages."""
    found = []
    for source in sorted((ROOT / "docs").rglob("*.md")):
        page = source.relative_to(ROOT / "docs").with_suffix("").as_posix()
        for kind, models in WIDGET.findall(source.read_text(encoding="utf-8")):
            found.append((f"/{page}/", kind, tuple(models.split())))
    return found


@pytest.mark.parametrize(("path", "kind", "models"), _widgets_in_sources(), ids=lambda value: value if isinstance(value, str) else "+".join(value))
def test_each_widget_runs_its_models_offline_as_pytorch_does(chromium, served_site: str, path: str, kind: str, models: tuple[str, ...]) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    found: list[str] = []
    try:
        page.goto(served_site + path, wait_until="networkidle")
        found += [f"fetched on the page's first load: {url}" for url in requests if "/onnxruntime/" in url or "/models/" in url]
        page.locator(".unimodel-widget").scroll_into_view_if_needed()
        page.wait_for_selector(".unimodel-widget canvas", timeout=TIMEOUT_MS)
        page.wait_for_load_state("networkidle")
        found += [f"fetched before any use: {url}" for url in requests if "/onnxruntime/" in url or url.endswith(".onnx")]
        before = _output(page)
        _use(page, kind)
        status = _wait_until_ready(page)
        if page.locator(".unimodel-widget--failed").count():
            found.append(f"the runtime did not start: {status}")
        if _output(page) == before:
            found.append("the interaction changed nothing the widget shows")
        for model in models:
            checked = page.evaluate("(name) => window.unimodelWidgets.check(name)", model)
            if not checked["within"]:
                found.append(f"{model}: ONNX Runtime Web differs from PyTorch by {checked['largest']:.3g}, beyond the card's tolerance")
        found += [f"request to {url}" for url in requests if urlsplit(url).hostname != LOCAL_HOST]
        found += [f"console: {error}" for error in errors]
        found += [f"axe (light): {violation}" for violation in _axe(page)]
        page.evaluate("document.body.setAttribute('data-md-color-scheme', 'slate')")
        found += [f"axe (dark): {violation}" for violation in _axe(page)]
    finally:
        context.close()
    assert not found, "\n".join(found)


def test_the_vae_widget_answers_the_keyboard(chromium, served_site: str) -> None:
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(served_site + "/en/vae/", wait_until="networkidle")
        page.locator(".unimodel-widget").scroll_into_view_if_needed()
        pad = page.locator(".unimodel-widget canvas").first
        pad.wait_for(timeout=TIMEOUT_MS)
        readout = page.locator(".unimodel-widget output")
        before = readout.text_content()
        pad.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Shift+ArrowUp")
        _wait_until_ready(page)
        x, y = (float(v) for v in re.findall(r"-?\d+\.\d+", before))
        assert readout.text_content() == f"z = ({x + 0.1:.2f}, {y + 0.5:.2f})"
    finally:
        page.close()


def test_the_diffusion_widgets_chain_is_the_chapters_sample_chain(chromium, served_site: str) -> None:
    """From the card's x_T without the noise term, the page's JavaScript chain ends where PyTorch's did."""
    page = chromium.new_page()
    try:
        page.goto(served_site + "/diffusion/", wait_until="networkidle")
        measured = page.evaluate(
            """async () => {
                const widget = await import('/javascripts/widgets/diffusion-chain.js');
                const card = await window.unimodelWidgets.card('diffusion/digits');
                const eps = async (x, t) => (await window.unimodelWidgets.run('diffusion/digits', {x, t: [t]})).eps;
                const x0 = widget.asOutput(await widget.chain(eps, card.meta, card.meta.reference.x_T));
                return {largest: Math.max(...x0.map((v, i) => Math.abs(v - card.meta.reference.x_0[i]))), tolerance: card.meta.reference.tolerance};
            }"""
        )
        assert measured["largest"] <= measured["tolerance"], measured
    finally:
        page.close()


def test_the_flow_widgets_euler_steps_are_the_chapters(chromium, served_site: str) -> None:
    """From the card's noise, the page's JavaScript Euler steps end where PyTorch's did."""
    page = chromium.new_page()
    try:
        page.goto(served_site + "/flow-matching/", wait_until="networkidle")
        measured = page.evaluate(
            """async () => {
                const widget = await import('/javascripts/widgets/flow-euler.js');
                const card = await window.unimodelWidgets.card('flow-matching/digits');
                const v = async (x, t) => (await window.unimodelWidgets.run('flow-matching/digits', {x, t: [t]})).v;
                const {noise, steps, x_0, tolerance} = card.meta.reference;
                const x0 = widget.asOutput(await widget.euler(v, noise, steps));
                return {largest: Math.max(...x0.map((value, i) => Math.abs(value - x_0[i]))), tolerance, steps};
            }"""
        )
        assert measured["steps"] > 1 and measured["largest"] <= measured["tolerance"], measured
    finally:
        page.close()


def test_the_clip_widget_tokenizes_the_prompts_as_the_package_does(chromium, served_site: str) -> None:
    """Both languages' prompts, tokenized by the page's JavaScript, are the ids captions.tokenize gives; a word it never saw is refused."""
    from unimodel.models import captions

    page = chromium.new_page()
    try:
        page.goto(served_site + "/en/clip/", wait_until="networkidle")
        tokenized = page.evaluate(
            """async () => {
                const widget = await import('/en/javascripts/widgets/clip-prompts.js');
                const card = await window.unimodelWidgets.card('clip/clip');
                const {vocabulary, context, prompts} = card.meta;
                const ids = Object.fromEntries(Object.entries(prompts).map(([lang, texts]) => [lang, texts.map(t => widget.tokenize(t, vocabulary, context).ids)]));
                return {ids, unknown: widget.tokenize('a handwritten cat', vocabulary, context).unknown};
            }"""
        )
        for lang in captions.LANGUAGES:
            assert tokenized["ids"][lang] == captions.tokenize(captions.prompts(lang)).tolist(), lang
        assert tokenized["unknown"] == ["cat"]
    finally:
        page.close()


def test_the_unified_widget_writes_the_captions_the_chapter_writes(chromium, served_site: str) -> None:
    """The page's greedy captions of the card's ten example digits, in both languages, are ``unified.write``'s."""
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(served_site + "/unified-model/", wait_until="networkidle")
        page.locator(".unimodel-widget").scroll_into_view_if_needed()
        page.locator(".unimodel-widget canvas").first.wait_for(timeout=TIMEOUT_MS)
        written, expected = page.evaluate(
            """async () => {
                const card = await window.unimodelWidgets.card('unified-model/transformer');
                const root = document.querySelector('.unimodel-widget');
                const written = {zh: [], en: []};
                for (const digit of card.meta.examples) {
                    const caption = await root.readDigit(digit);
                    written.zh.push(caption.zh);
                    written.en.push(caption.en);
                }
                return [written, card.meta.captions];
            }"""
        )
        assert written == expected
    finally:
        page.close()


def test_a_runtime_that_cannot_start_is_said_plainly(chromium, served_site: str) -> None:
    """With the WebAssembly runtime unreachable, the widget says so and points at the figures; nothing else breaks."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.route("**/onnxruntime/*.wasm", lambda route: route.abort())
        page.goto(served_site + "/en/vit/", wait_until="networkidle")
        page.locator(".unimodel-widget").scroll_into_view_if_needed()
        page.locator(".unimodel-widget canvas").first.wait_for(timeout=TIMEOUT_MS)
        _use(page, "vit-draw")
        page.locator(".unimodel-widget--failed").wait_for(timeout=TIMEOUT_MS)
        status = page.locator(".unimodel-widget__status").text_content()
        assert status.startswith("The model could not start in this browser: ") and status.endswith(
            "The figures above show the same model, drawn at build time."
        )
    finally:
        context.close()
