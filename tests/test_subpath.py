"""The site served under a path, as GitHub Pages serves a project site (``https://USER.github.io/REPO/``).

The site is built a second time for ``http://127.0.0.1:PORT/unimodel/`` (its
figures and numbers come from the cache the first build filled) and served
from a folder whose ``unimodel/`` holds it. Every link must stay under that
path (checked on every page), the pages must load with no console error (a
page of each kind in each language: the test of the site at its root visits
them all), and the language switch and search must work there.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_browser import _visit
from test_links import broken_links
from test_site import _search, _switch_language

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "/unimodel/"
VISITED = ("", "vae/", "vae-notebook/", "unified-model/", "en/", "en/vae/", "en/vae-notebook/", "en/unified-model/", "404.html", "en/404.html")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def under_a_path(built_site, tmp_path_factory):
    """(base URL with no trailing slash, the built site folder), the site built for and served under ``PREFIX``."""
    served = tmp_path_factory.mktemp("pages")
    site = served / PREFIX.strip("/")
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    env = {**os.environ, "SITE_URL": base + PREFIX, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        server.server_close()
        pytest.fail(f"mkdocs build for {PREFIX} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}", pytrace=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_every_link_resolves_under_the_path(under_a_path):
    _, site = under_a_path
    assert broken_links(site) == []


@pytest.mark.browser
def test_pages_load_under_the_path_with_no_console_error(chromium, under_a_path, site_pages):
    base, _ = under_a_path
    assert {"/" + path for path in VISITED if not path.endswith(".html")} <= set(site_pages)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    problems = {}
    try:
        for path in VISITED:
            visit = _visit(context, base, PREFIX + path, root=PREFIX)
            issues = visit.console_errors + visit.failed + visit.page_errors
            issues += [f"request outside {PREFIX}: {url}" for url in visit.requests if urlsplit(url).path and not urlsplit(url).path.startswith(PREFIX)]
            if issues or visit.html_lang != ("en" if path.startswith("en/") else "zh"):
                problems[path or "/"] = [*issues, f"lang={visit.html_lang}"]
    finally:
        context.close()
    assert not problems, problems


@pytest.mark.browser
def test_the_language_switch_and_search_work_under_the_path(chromium, under_a_path):
    base, _ = under_a_path
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(base + PREFIX + "vae/")
        _switch_language(page, "en")
        page.wait_for_url(base + PREFIX + "en/vae/")
        _switch_language(page, "zh")
        page.wait_for_url(base + PREFIX + "vae/")
        assert PREFIX + "vae/" in _search(page, "变分")
        page.goto(base + PREFIX + "en/")
        results = _search(page, "reparameterization")
        assert PREFIX + "en/vae/" in results and all(path.startswith(PREFIX + "en/") for path in results), results
    finally:
        context.close()
