"""How fast the site builds, and how heavy its VAE chapter is: ``unimodel bench build``.

Everything runs on a copy of the repository (the files git knows of, tracked
or not ignored, plus a link to ``node_modules/``) in a temporary folder, with
its own figure cache (``UNIMODEL_CACHE``) and site folders, so the user's
``.cache/``, ``site/`` and working tree are never touched. The copy's
``src/`` comes first on ``PYTHONPATH``, so the copy's code is what runs (the
editable install in ``.venv`` points at the original); the bench checks that.

Measured, in order:

clean build
    ``mkdocs build --strict`` from an empty cache: every model trained, every
    figure drawn, every result computed, every notebook executed. The time
    is split over what the build produced: each artifact the cache holds
    afterwards (a trained run, a figure, a result, an executed notebook)
    is charged the time since the previous one was finished (file times),
    so the parts add up to the total; what follows the last one is MkDocs
    itself (rendering pages, search index, copying files).
second build
    The same, with nothing changed.
after touching docs/vae.md
    Its modification time only: every build is a full ``mkdocs build``, so
    this costs what the second build costs unless something is invalidated.
after editing src/unimodel/models/vae.py
    A comment appended to the copy's file: every artifact whose code
    depends on it is recomputed.
tests (``--with-tests``)
    ``pytest`` on the copy from an empty cache, as a CI run does it.
the VAE chapter in Chromium
    Bytes transferred to load ``/vae/`` (HTML, JS, CSS, images, data),
    and the time from navigation start until MathJax has typeset every
    formula, median of a few loads in fresh browser contexts.

The result is JSON on stdout, a readable summary on stderr.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository this package lives in (src/unimodel/ -> ..)
CHROMIUM = Path("/usr/bin/chromium")
DOCS_PAGE = "docs/vae.md"
MODEL_FILE = "src/unimodel/models/vae.py"
PAGE = "/vae/"

# Targets on two CPU cores.
TARGETS = {
    "clean_build_s": 240.0,
    "second_build_s": 10.0,
    "tests_s": 600.0,
    "vae_page_bytes": 3_000_000,
    "vae_typeset_ms": 2000.0,
}

UNIMODEL_LINE = re.compile(r"unimodel: (drew|training|executed) (.*)")


def say(message: str = "") -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the copy


def copy_repository(source: Path, dest: Path) -> Path:
    """Copy the files git knows of in ``source`` (tracked, or untracked and not ignored) to ``dest``.

    ``node_modules/`` (ignored, large) becomes a symbolic link to the original.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source, capture_output=True, check=True,
    ).stdout.decode("utf-8").split("\0")
    for rel in sorted(set(filter(None, listed))):
        src = source / rel
        if not src.is_file():  # deleted in the working tree, or a submodule
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    if (source / "node_modules").is_dir():
        (dest / "node_modules").symlink_to(source / "node_modules")
    return dest


def environment(copy: Path, cache: Path, site_url: str | None = None) -> dict[str, str]:
    """The environment of a build in ``copy``: its own package first, a private cache."""
    env = {key: value for key, value in os.environ.items() if key not in ("UNIMODEL_CACHE", "SITE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["UNIMODEL_CACHE"] = str(cache)
    env["NO_MKDOCS_2_WARNING"] = "1"
    if site_url:
        env["SITE_URL"] = site_url
    return env


def package_used(env: dict[str, str], cwd: Path) -> Path:
    """Where the ``unimodel`` package a subprocess with ``env`` imports lives."""
    done = subprocess.run(
        [sys.executable, "-c", "import unimodel; print(unimodel.__file__)"],
        cwd=cwd, env=env, capture_output=True, text=True, check=True,
    )
    return Path(done.stdout.strip()).resolve()


def require_copy_package(env: dict[str, str], copy: Path) -> Path:
    used = package_used(env, copy)
    if not used.is_relative_to((copy / "src").resolve()):
        raise RuntimeError(f"a build in the copy would import unimodel from {used}, not from {copy / 'src'}")
    return used


# ---------------------------------------------------------------- one build


@dataclass
class Build:
    seconds: float
    started: float  # time.time() at the start
    log: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, line)
    returncode: int = 0


def timed_build(copy: Path, env: dict[str, str], site: Path) -> Build:
    """``mkdocs build --strict`` in ``copy`` into ``site``; its time and its log lines, timestamped."""
    started_wall, started = time.time(), time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
    )
    build = Build(0.0, started_wall)
    for line in process.stdout:
        build.log.append((time.perf_counter() - started, line.rstrip("\n")))
    build.returncode = process.wait()
    build.seconds = time.perf_counter() - started
    if build.returncode != 0:
        tail = "\n".join(line for _, line in build.log[-30:])
        raise RuntimeError(f"mkdocs build failed (exit {build.returncode}) in {copy}:\n{tail}")
    return build


def _run_label(folder: Path) -> tuple[str, dict]:
    """A trained run's model and settings, and its training time, from its checkpoint."""
    from unimodel.checkpoint import CheckpointError, load_checkpoint

    try:
        saved = load_checkpoint(folder / "checkpoint.pt")
    except CheckpointError:
        return f"run {folder.name}", {}
    meta, loop = saved.get("meta", {}), saved.get("loop", {})
    label = f"training {meta.get('model', '?')} {json.dumps(meta.get('config', {}), sort_keys=True)}"
    return label, {"epochs": len(loop.get("history", [])), "train_seconds": round(float(loop.get("seconds", 0.0)), 1)}


def artifacts(cache: Path) -> dict[Path, float]:
    """Every finished artifact in the cache and the time it was finished (its file's mtime).

    A run is finished when its ``done`` marker is written; temporary files
    (``.name.tmp``) are not artifacts.
    """
    found = {}
    for path in cache.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        kind = path.relative_to(cache).parts[0]
        if kind == "runs" and path.name != "done":
            continue
        found[path] = path.stat().st_mtime
    return found


def _describe(cache: Path, path: Path) -> tuple[str, str, dict]:
    """(kind, name, details) of an artifact file."""
    kind = path.relative_to(cache).parts[0]
    if kind == "runs":
        label, details = _run_label(path.parent)
        return "training", label, details
    if kind == "figures":  # vae--latent-space-zh-<key>.png
        stem = path.stem.rsplit("-", 1)[0]
        name, _, language = stem.rpartition("-")
        return "figure", f"{name.replace('--', '/')} ({language})", {}
    if kind == "results":
        return "result", path.stem.rsplit("-", 1)[0], {}
    if kind == "notebooks":
        return "notebook", path.name, {}
    return kind, path.name, {}


def timeline(build: Build, cache: Path, since: dict[Path, float]) -> list[dict]:
    """What ``build`` spent its time on: each new artifact charged the time since the previous one.

    ``since``: the artifacts that were there before the build (not charged).
    The first item also carries the start-up (MkDocs, the figure process,
    the data); the item ``mkdocs`` is everything after the last artifact.
    """
    new = sorted((mtime, path) for path, mtime in artifacts(cache).items() if path not in since)
    items, previous = [], build.started
    for mtime, path in new:
        kind, name, details = _describe(cache, path)
        items.append({"kind": kind, "name": name, "seconds": round(max(0.0, mtime - previous), 2), **details})
        previous = mtime
    end = build.started + build.seconds
    items.append({"kind": "mkdocs", "name": "pages, search index, copying files", "seconds": round(max(0.0, end - previous), 2)})
    return items


def by_kind(items: list[dict]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for item in items:
        totals[item["kind"]] = round(totals.get(item["kind"], 0.0) + item["seconds"], 2)
    return totals


def recomputed_lines(build: Build) -> list[str]:
    """The figure pipeline's own log lines (something was drawn, trained or executed)."""
    return [match.group(0) for _, line in build.log if (match := UNIMODEL_LINE.search(line))]


# ---------------------------------------------------------------- the page in Chromium


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass


@contextlib.contextmanager
def bound_server(directory: Path):
    """A server for ``directory`` bound to a free port of 127.0.0.1 (known before it serves)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    try:
        yield server
    finally:
        server.server_close()


# Polls from the first script of the page: the time (ms since navigation
# start) when MathJax is running and every formula holds its typeset output.
_TYPESET_CLOCK = """(() => {
    const check = () => {
        const math = document.querySelectorAll('article .arithmatex');
        const mj = window.MathJax;
        if (mj && mj.startup && mj.startup.promise && math.length > 0
                && [...math].every(el => el.querySelector('mjx-container'))) {
            window.__typesetAt = performance.now();
            return;
        }
        setTimeout(check, 5);
    };
    check();
})();"""

_RESOURCE_TYPES = {"document": "html", "script": "js", "stylesheet": "css", "image": "images", "font": "fonts"}


def measure_page(base_url: str, path: str = PAGE, loads: int = 3) -> dict:
    """Bytes transferred and time to typeset for ``path``, loaded ``loads`` times in fresh contexts."""
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            for _ in range(loads):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                finished = []
                context.on("requestfinished", lambda request: finished.append(request))
                context.add_init_script(_TYPESET_CLOCK)
                page = context.new_page()
                page.goto(base_url + path, wait_until="load")
                page.wait_for_function("() => window.__typesetAt !== undefined", timeout=30_000)
                page.evaluate("async () => { let p; do { p = MathJax.startup.promise; await p; } while (p !== MathJax.startup.promise); }")
                page.wait_for_load_state("networkidle")
                timing = page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return {dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd, typeset_ms: window.__typesetAt}; }"
                )
                sizes: dict[str, int] = {}
                for request in finished:
                    kind = _RESOURCE_TYPES.get(request.resource_type, "other")
                    sizes[kind] = sizes.get(kind, 0) + request.sizes()["responseBodySize"]
                runs.append({**timing, "bytes": sum(sizes.values()), "bytes_by_type": sizes, "requests": len(finished),
                             "urls": sorted({request.url.removeprefix(base_url) for request in finished})})
                context.close()
        finally:
            browser.close()
    first = runs[0]
    return {
        "path": path,
        "bytes": first["bytes"],
        "bytes_by_type": first["bytes_by_type"],
        "requests": first["requests"],
        "files": first["urls"],
        "typeset_ms": round(statistics.median(run["typeset_ms"] for run in runs)),
        "typeset_ms_runs": [round(run["typeset_ms"]) for run in runs],
        "load_ms": round(statistics.median(run["load_ms"] for run in runs)),
        "dom_content_loaded_ms": round(statistics.median(run["dom_content_loaded_ms"] for run in runs)),
    }


# ---------------------------------------------------------------- tests


def timed_tests(copy: Path, cache: Path) -> dict:
    """``pytest -q`` in the copy from an empty cache; its time and its last line."""
    env = environment(copy, cache)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=copy, env=env, capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {"seconds": round(seconds, 1), "returncode": done.returncode, "summary": lines[-1] if lines else done.stderr[-500:]}


# ---------------------------------------------------------------- the whole bench


def _top(items: list[dict], n: int = 8) -> list[dict]:
    return sorted((item for item in items if item["kind"] != "mkdocs"), key=lambda item: -item["seconds"])[:n]


def bench_build(repo: Path = ROOT, *, with_tests: bool = False, page_loads: int = 3, keep: Path | None = None) -> dict:
    """Run every measurement (see the module's docstring); the report as a JSON-able dict."""
    import torch

    report: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__},
    }
    workdir = Path(tempfile.mkdtemp(prefix="unimodel-bench-")) if keep is None else keep
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        copy = copy_repository(repo, workdir / "repo")
        cache = workdir / "cache"
        say(f"bench: copied {repo} to {copy}; cache {cache}")
        with bound_server(workdir / "site-clean") as server:
            site_url = f"http://127.0.0.1:{server.server_address[1]}/"
            env = environment(copy, cache, site_url)
            report["package"] = str(require_copy_package(env, copy))

            say("bench: clean build (trains and draws everything) ...")
            clean = timed_build(copy, env, workdir / "site-clean")
            items = timeline(clean, cache, since={})
            report["clean_build"] = {"seconds": round(clean.seconds, 1), "by_kind": by_kind(items), "costliest": _top(items), "timeline": items}
            say(f"bench: clean build {clean.seconds:.1f} s")

            def rebuild(name: str) -> dict:
                before = artifacts(cache)
                build = timed_build(copy, env, workdir / f"site-{name}")
                items = timeline(build, cache, since=before)
                result = {"seconds": round(build.seconds, 1), "recomputed": recomputed_lines(build), "by_kind": by_kind(items)}
                if len(items) > 1:
                    result["costliest"] = _top(items)
                say(f"bench: {name} {build.seconds:.1f} s ({len(result['recomputed'])} items recomputed)")
                return result

            report["second_build"] = rebuild("second build")

            docs_page = copy / DOCS_PAGE
            now = time.time()
            os.utime(docs_page, (now, now))
            report["after_touching_docs_page"] = {"file": DOCS_PAGE, **rebuild(f"after touching {DOCS_PAGE}")}

            model = copy / MODEL_FILE
            original = model.read_text(encoding="utf-8")
            model.write_text(original + "\n# bench: an edit that changes nothing but the code's hash\n", encoding="utf-8")
            try:
                edited = rebuild(f"after editing {MODEL_FILE}")
            finally:
                model.write_text(original, encoding="utf-8")
            if not edited["recomputed"]:
                raise RuntimeError(f"editing {MODEL_FILE} in the copy recomputed nothing: is the copy's code the one that runs?")
            report["after_editing_model"] = {"file": MODEL_FILE, **edited}

            if CHROMIUM.exists():
                thread = threading.Thread(target=server.serve_forever, daemon=True)
                thread.start()
                try:
                    say(f"bench: loading {PAGE} in Chromium {page_loads} times ...")
                    report["vae_page"] = measure_page(site_url.rstrip("/"), PAGE, page_loads)
                finally:
                    server.shutdown()
                    thread.join(timeout=10)
            else:
                report["vae_page"] = None
                say(f"bench: {CHROMIUM} is missing, the page is not measured")

        if with_tests:
            say("bench: the test suite, from an empty cache (several minutes) ...")
            report["tests"] = timed_tests(copy, workdir / "cache-tests")
            say(f"bench: tests {report['tests']['seconds']:.1f} s: {report['tests']['summary']}")
        else:
            report["tests"] = None
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report["targets"] = check_targets(report)
    return report


def check_targets(report: dict) -> list[dict]:
    """Each target: its measured value (None when not measured), its limit, whether it is met."""
    page = report.get("vae_page") or {}
    tests = report.get("tests") or {}
    values = {
        "clean_build_s": (report.get("clean_build") or {}).get("seconds"),
        "second_build_s": (report.get("second_build") or {}).get("seconds"),
        "tests_s": tests.get("seconds") if tests.get("returncode") == 0 else None,
        "vae_page_bytes": page.get("bytes"),
        "vae_typeset_ms": page.get("typeset_ms"),
    }
    return [
        {"name": name, "value": values[name], "limit": limit, "ok": None if values[name] is None else values[name] <= limit}
        for name, limit in TARGETS.items()
    ]


def summary(report: dict) -> str:
    """The report, for people."""
    lines = [f"unimodel bench build on {report['machine']['cpus']} CPU cores ({report['machine']['platform']})", ""]
    clean = report["clean_build"]
    lines.append(f"clean build              {clean['seconds']:7.1f} s   " + ", ".join(f"{k} {v:.1f} s" for k, v in clean["by_kind"].items()))
    lines.append("  costliest:")
    for item in clean["costliest"]:
        extra = f"  ({item['epochs']} epochs, {item['train_seconds']} s in the loop)" if "epochs" in item else ""
        lines.append(f"    {item['seconds']:6.1f} s  {item['kind']:9} {item['name']}{extra}")
    for key, title in (("second_build", "second build"), ("after_touching_docs_page", "touched docs/vae.md"), ("after_editing_model", "edited models/vae.py")):
        build = report[key]
        lines.append(f"{title:24} {build['seconds']:7.1f} s   {len(build['recomputed'])} items recomputed")
    tests = report.get("tests")
    lines.append(f"tests                    {tests['seconds']:7.1f} s   {tests['summary']}" if tests else "tests                    (not run: --with-tests)")
    page = report.get("vae_page")
    if page:
        by_type = ", ".join(f"{k} {v / 1e3:.0f} kB" for k, v in sorted(page["bytes_by_type"].items(), key=lambda kv: -kv[1]))
        lines.append(f"VAE chapter              {page['bytes'] / 1e6:7.2f} MB  in {page['requests']} requests ({by_type})")
        lines.append(f"  typeset after          {page['typeset_ms']:7d} ms  (median of {page['typeset_ms_runs']}; load event {page['load_ms']} ms)")
    else:
        lines.append("VAE chapter              (not measured: no Chromium)")
    lines.append("")
    for target in report["targets"]:
        state = {True: "ok", False: "MISSED", None: "not measured"}[target["ok"]]
        lines.append(f"target {target['name']:16} {str(target['value']):>10} <= {target['limit']:<10} {state}")
    return "\n".join(lines)


def main(*, with_tests: bool = False, page_loads: int = 3, keep: str | None = None) -> int:
    if not (ROOT / "mkdocs.yml").is_file():
        raise RuntimeError(f"{ROOT} is not the repository (no mkdocs.yml): the bench needs an editable install (make setup)")
    report = bench_build(ROOT, with_tests=with_tests, page_loads=page_loads, keep=Path(keep) if keep else None)
    say()
    say(summary(report))
    print(json.dumps(report, indent=1))
    return 0
