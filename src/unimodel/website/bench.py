"""How fast the site builds, and how heavy its VAE chapter is: ``unimodel bench build``.

Everything runs on a copy of the repository (the files git knows of, tracked
or not ignored, plus a link to ``node_modules/``) in a temporary folder, with
its own figure caches (``UNIMODEL_CACHE``) and site folders, so the user's
``.cache/``, ``site/`` and working tree are never touched. The copy's
``src/`` comes first on ``PYTHONPATH``, so the copy's code is what runs (the
editable install in ``.venv`` points at the original); the bench checks that.

Measured, in order, under one profile (``--profile``: full by default, what
``make site`` builds; quick for a check in minutes):

clean builds
    ``mkdocs build --strict`` from an empty cache: every model trained,
    every figure drawn, every result computed, every notebook executed;
    once with the tasks one after the other (``UNIMODEL_JOBS=1``) and once
    with ``--jobs`` workers, each from its own empty cache, and the
    speed-up as the ratio of the two. Each is split over its tasks by the
    build's own progress lines (a task's seconds, wherever it ran).
second build
    The same, with nothing changed (on the parallel build's cache).
after touching docs/vae.md
    Its modification time only.
after a comment in src/unimodel/training.py
    Keys hash what the code does, so nothing may be recomputed.
after editing src/unimodel/models/vae.py
    A new statement in the copy's file: every task whose code depends on
    it is recomputed, and the bench lists them.
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

ROOT = Path(__file__).resolve().parents[3]  # the repository this package lives in (src/unimodel/website/ -> ...)
CHROMIUM = Path("/usr/bin/chromium")
DOCS_PAGE = "docs/vae.md"
LOOP_FILE = "src/unimodel/training.py"
MODEL_FILE = "src/unimodel/models/vae.py"
PAGE = "/vae/"

# Targets on two CPU cores; the clean build's depends on the profile.
CLEAN_BUILD_TARGET_S = {"full": 1200.0, "quick": 240.0}
TARGETS = {
    "second_build_s": 10.0,
    "tests_s": 600.0,
    "vae_page_bytes": 3_000_000,
    "vae_typeset_ms": 2000.0,
}

TASK_LINE = re.compile(r"unimodel: \[\d+/\d+\] (train|result|figure|notebook) (.*): ([0-9.]+) s \(")
KINDS = {"train": "training", "result": "result", "figure": "figure", "notebook": "notebook"}


def say(message: str = "") -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the copy


def copy_repository(source: Path, dest: Path) -> Path:
    """Copy the files git knows of in ``source`` (tracked, or untracked and not ignored) to ``dest``.

    ``node_modules/`` (ignored, large) becomes a symbolic link to the original.
    """
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=source,
            capture_output=True,
            check=True,
        )
        .stdout.decode("utf-8")
        .split("\0")
    )
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
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
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
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
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


def tasks_done(build: Build) -> list[dict]:
    """What ``build`` computed, from its progress lines: kind, name and seconds of each task, in the order they finished."""
    found = []
    for _, line in build.log:
        if match := TASK_LINE.search(line):
            found.append({"kind": KINDS[match.group(1)], "name": match.group(2), "seconds": float(match.group(3))})
    return found


def by_kind(items: list[dict]) -> dict[str, float]:
    """Seconds spent per kind of task (summed over the tasks, however many ran at once)."""
    totals: dict[str, float] = {}
    for item in items:
        totals[item["kind"]] = round(totals.get(item["kind"], 0.0) + item["seconds"], 2)
    return totals


# ---------------------------------------------------------------- the page in Chromium


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
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
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            for _ in range(loads):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                finished = []
                context.on("requestfinished", finished.append)
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
                runs.append(
                    {
                        **timing,
                        "bytes": sum(sizes.values()),
                        "bytes_by_type": sizes,
                        "requests": len(finished),
                        "urls": sorted({request.url.removeprefix(base_url) for request in finished}),
                    }
                )
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
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {"seconds": round(seconds, 1), "returncode": done.returncode, "summary": lines[-1] if lines else done.stderr[-500:]}


# ---------------------------------------------------------------- the whole bench


def _top(items: list[dict], n: int = 10) -> list[dict]:
    return sorted(items, key=lambda item: -item["seconds"])[:n]


def bench_build(repo: Path = ROOT, *, profile: str = "full", jobs: int = 2, with_tests: bool = False, page_loads: int = 3, keep: Path | None = None) -> dict:
    """Run every measurement (see the module's docstring); the report as a JSON-able dict."""
    import torch

    report: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__},
        "profile": profile,
        "jobs": jobs,
    }
    workdir = Path(tempfile.mkdtemp(prefix="unimodel-bench-")) if keep is None else keep
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        copy = copy_repository(repo, workdir / "repo")
        say(f"bench: copied {repo} to {copy}; caches under {workdir}")
        with bound_server(workdir / "site-clean") as server:
            site_url = f"http://127.0.0.1:{server.server_address[1]}/"

            def env_for(cache: Path, workers: int) -> dict[str, str]:
                return {**environment(copy, cache, site_url), "UNIMODEL_PROFILE": profile, "UNIMODEL_JOBS": str(workers)}

            report["package"] = str(require_copy_package(env_for(workdir / "cache", jobs), copy))
            clean = {}
            for workers in dict.fromkeys((1, jobs)):  # serial first; once if jobs is 1
                name = "serial" if workers == 1 else f"{workers} workers"
                say(f"bench: clean {profile} build, {name} (trains and draws everything) ...")
                cache = workdir / ("cache" if workers == jobs else "cache-serial")
                build = timed_build(copy, env_for(cache, workers), workdir / ("site-clean" if workers == jobs else "site-serial"))
                items = tasks_done(build)
                clean[name] = {
                    "seconds": round(build.seconds, 1),
                    "jobs": workers,
                    "tasks": len(items),
                    "task_seconds": by_kind(items),
                    "costliest": _top(items),
                }
                say(f"bench: clean build, {name}: {build.seconds:.1f} s")
            report["clean_build"] = clean[f"{jobs} workers"] if jobs > 1 else clean["serial"]
            report["clean_build_serial"] = clean["serial"]
            report["speed_up"] = round(clean["serial"]["seconds"] / report["clean_build"]["seconds"], 2)
            env = env_for(workdir / "cache", jobs)

            def rebuild(name: str) -> dict:
                build = timed_build(copy, env, workdir / f"site-{name.replace(' ', '-').replace('/', '-')}")
                items = tasks_done(build)
                result = {"seconds": round(build.seconds, 1), "recomputed": [f"{i['kind']} {i['name']}" for i in items], "task_seconds": by_kind(items)}
                say(f"bench: {name} {build.seconds:.1f} s ({len(items)} tasks recomputed)")
                return result

            report["second_build"] = rebuild("second build")

            docs_page = copy / DOCS_PAGE
            now = time.time()
            os.utime(docs_page, (now, now))
            report["after_touching_docs_page"] = {"file": DOCS_PAGE, **rebuild(f"after touching {DOCS_PAGE}")}

            def edited(path: str, line: str, name: str) -> dict:
                file = copy / path
                original = file.read_text(encoding="utf-8")
                file.write_text(original + line, encoding="utf-8")
                try:
                    return {"file": path, **rebuild(name)}
                finally:
                    file.write_text(original, encoding="utf-8")

            report["after_comment_in_loop"] = edited(
                LOOP_FILE, "\n# bench: a comment changes what the code says, not what it does\n", f"after a comment in {LOOP_FILE}"
            )
            report["after_editing_model"] = edited(
                MODEL_FILE, "\nBENCH_EDIT = True  # bench: a statement, so the code's meaning changes\n", f"after editing {MODEL_FILE}"
            )
            if not report["after_editing_model"]["recomputed"]:
                raise RuntimeError(f"editing {MODEL_FILE} in the copy recomputed nothing: is the copy's code the one that runs?")

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
        "comment_rebuild_tasks": len((report.get("after_comment_in_loop") or {}).get("recomputed", [])) if report.get("after_comment_in_loop") else None,
        "second_build_s": (report.get("second_build") or {}).get("seconds"),
        "tests_s": tests.get("seconds") if tests.get("returncode") == 0 else None,
        "vae_page_bytes": page.get("bytes"),
        "vae_typeset_ms": page.get("typeset_ms"),
    }
    limits = {"clean_build_s": CLEAN_BUILD_TARGET_S[report.get("profile", "full")], "comment_rebuild_tasks": 0, **TARGETS}
    return [
        {"name": name, "value": values[name], "limit": limit, "ok": None if values[name] is None else values[name] <= limit} for name, limit in limits.items()
    ]


def summary(report: dict) -> str:
    """The report, for people."""
    lines = [f"unimodel bench build, {report['profile']} profile, on {report['machine']['cpus']} CPU cores ({report['machine']['platform']})", ""]
    serial, clean = report["clean_build_serial"], report["clean_build"]
    lines.append(f"clean build, serial       {serial['seconds']:7.1f} s   {serial['tasks']} tasks")
    if report["jobs"] > 1:
        lines.append(f"clean build, {clean['jobs']} workers    {clean['seconds']:7.1f} s   speed-up {report['speed_up']:.2f}x")
    lines.append("  costliest tasks (serial): " + ", ".join(f"{k} {v:.0f} s" for k, v in serial["task_seconds"].items()))
    for item in serial["costliest"]:
        lines.append(f"    {item['seconds']:7.1f} s  {item['kind']:9} {item['name']}")
    for key, title in (
        ("second_build", "second build"),
        ("after_touching_docs_page", "touched docs/vae.md"),
        ("after_comment_in_loop", "comment in training.py"),
        ("after_editing_model", "edited models/vae.py"),
    ):
        build = report[key]
        lines.append(f"{title:25} {build['seconds']:7.1f} s   {len(build['recomputed'])} tasks recomputed")
    edited = report["after_editing_model"]["recomputed"]
    lines.append("  recomputed after the model edit: " + ", ".join(edited[:12]) + (" ..." if len(edited) > 12 else ""))
    tests = report.get("tests")
    lines.append(f"tests                     {tests['seconds']:7.1f} s   {tests['summary']}" if tests else "tests                     (not run: --with-tests)")
    page = report.get("vae_page")
    if page:
        by_type = ", ".join(f"{k} {v / 1e3:.0f} kB" for k, v in sorted(page["bytes_by_type"].items(), key=lambda kv: -kv[1]))
        lines.append(f"VAE chapter               {page['bytes'] / 1e6:7.2f} MB  in {page['requests']} requests ({by_type})")
        lines.append(f"  typeset after           {page['typeset_ms']:7d} ms  (median of {page['typeset_ms_runs']}; load event {page['load_ms']} ms)")
    else:
        lines.append("VAE chapter               (not measured: no Chromium)")
    lines.append("")
    for target in report["targets"]:
        state = {True: "ok", False: "MISSED", None: "not measured"}[target["ok"]]
        lines.append(f"target {target['name']:22} {target['value']!s:>10} <= {target['limit']:<10} {state}")
    return "\n".join(lines)


def main(*, profile: str = "full", jobs: int = 2, with_tests: bool = False, page_loads: int = 3, keep: str | None = None) -> int:
    if not (ROOT / "mkdocs.yml").is_file():
        raise RuntimeError(f"{ROOT} is not the repository (no mkdocs.yml): the bench needs an editable install (make setup)")
    report = bench_build(ROOT, profile=profile, jobs=jobs, with_tests=with_tests, page_loads=page_loads, keep=Path(keep) if keep else None)
    say()
    say(summary(report))
    print(json.dumps(report, indent=1))
    return 0
