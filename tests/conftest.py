"""Shared fixtures: the built site, a local server for it, a headless Chromium.

``built_site``      Path of the site built once per test session with ``mkdocs build --strict``
                    into a temporary directory (each worker process its own copy),
                    under the quick profile (a few epochs per model) unless
                    ``UNIMODEL_PROFILE`` says otherwise.
``served_site``     Base URL (``http://127.0.0.1:PORT``, no trailing slash) of a
                    server for that directory, in a background thread.
``chromium``        A headless Chromium (the system one, ``/usr/bin/chromium``,
                    driven by playwright). Skipped when it is missing, unless
                    the ``CI`` environment variable is set: then it fails.
``site_pages``      Site paths ("/", "/en/vae/", ...) of every page of both
                    languages, from the built site's two sitemaps (no 404 pages).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gzip
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")

# The chapters read their budgets when they are first imported: every test process imports them
# under the quick profile (unless the suite is run with UNIMODEL_PROFILE=full), whichever test is first.
os.environ.setdefault("UNIMODEL_PROFILE", "quick")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the tests in one worker process per core (pytest-xdist): each, and every
    # script it starts, computes on one thread, so that the workers do not fight over the cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def _site_server(tmp_path_factory):
    """A server bound now to a free port on 127.0.0.1, not serving yet.

    The port is known before the build, so the site can be built for its
    real address (Material's instant navigation compares links against the
    sitemap, port included).
    """
    site = tmp_path_factory.mktemp("site")
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    try:
        yield server, site
    finally:
        server.server_close()


@contextlib.contextmanager
def _one_build_at_a_time(tmp_path_factory):
    """Hold a lock that the session's other worker processes (pytest-xdist) share; yield the path of the record of a site one of them built.

    The first worker to ask for the site trains and draws into the cache and builds it; the others
    wait, then copy that build for their own server's address (``_copy_for``).
    """
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "built-site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield shared / "built-site.json"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _copy_for(source: Path, old_url: str, site: Path, url: str) -> None:
    """Copy a site built for ``old_url`` into ``site`` as built for ``url``: the site's address is in its pages, search index and sitemaps only."""
    shutil.copytree(source, site, dirs_exist_ok=True)
    for path in site.rglob("*"):
        if path.suffix in (".html", ".xml", ".json"):
            text = path.read_text(encoding="utf-8")
            if old_url in text:
                path.write_text(text.replace(old_url, url), encoding="utf-8")
        elif path.name.endswith(".xml.gz"):
            path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()).replace(old_url.encode(), url.encode()), mtime=0))


@pytest.fixture(scope="session")
def built_site(_site_server, tmp_path_factory) -> Path:
    """Build the site once per session with ``mkdocs build --strict``; its directory, for this worker's server's address."""
    server, site = _site_server
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    # every page, figure and number is built, on small budgets: the full ones take an hour (`make site`)
    env = {**os.environ, "SITE_URL": url, "NO_MKDOCS_2_WARNING": "1"}
    with _one_build_at_a_time(tmp_path_factory) as record:
        if record.exists():  # another worker of this session built it
            built = json.loads(record.read_text(encoding="utf-8"))
            _copy_for(Path(built["site"]), built["url"], site, url)
            return site
        result = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            record.write_text(json.dumps({"site": str(site), "url": url}), encoding="utf-8")
    if result.returncode != 0:
        pytest.fail(
            f"mkdocs build --strict failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return site


@pytest.fixture(scope="session")
def served_site(built_site, _site_server) -> str:
    """Serve the built site on 127.0.0.1; the base URL, without a trailing slash."""
    server, _ = _site_server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium browser (playwright ``Browser``)."""
    in_ci = bool(os.environ.get("CI"))
    if not CHROMIUM.exists():
        if in_ci:
            pytest.fail(f"{CHROMIUM} is missing; in CI the browser tests must run", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser tests)")
    from playwright.sync_api import sync_playwright  # in the `test` extra

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def site_pages(built_site) -> list[str]:
    """Site paths of every page in the sitemaps of both languages, zh first."""
    paths = []
    for sitemap in (built_site / "sitemap.xml", built_site / "en" / "sitemap.xml"):
        locs = re.findall(r"<loc>(.*?)</loc>", sitemap.read_text(encoding="utf-8"))
        paths += [urlsplit(loc).path for loc in locs]
    return paths


@pytest.fixture
def quick(tmp_path, monkeypatch) -> Path:
    """The quick profile and an empty cache of this test's own, the chapters loaded: the cache's folder."""
    from unimodel.figures import registry

    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))
    registry.load_chapters()
    return tmp_path / "cache"
