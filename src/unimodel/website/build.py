"""Compute everything the site shows, as a graph of tasks: ``unimodel figures --json``.

The tasks are the runs the chapters declare (``@trains``), the results, the
models exported for the browser (``@exported``), the figures in each
language and the notebooks. A chapter's results and
figures need its runs; its figures need its results too, and an item needs
the results it declares it ``uses``. Every task reads or writes the cache
only, under a lock per artifact, so any order that respects the graph gives
the same files, and a task that needs something the graph does not know of
still finds it made (or makes it) exactly once.

Three ways to run the graph, all with the same tasks:

``jobs=1``
    One after the other in this process: the reference.
``jobs=N``
    On a local Dask cluster of N worker processes with one thread each
    (``dask.distributed``); of the tasks that are ready, the one at the
    head of the longest chain of work starts first (``critical_paths``).
``scheduler=ADDRESS``
    On a Dask cluster a user already runs (``tcp://host:8786``). Every
    worker must run this same code and see the cache folder at the same
    path; a worker whose code gives another key than this process's fails
    the task with a message that says so.

Progress: one bar over the tasks to compute (a line per task when stderr is
not a terminal), with the time spent, an estimate of what is left from the
tasks' times in earlier builds (``timings.json`` in the cache), and the
tasks in progress.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import os
import statistics
import sys
import time
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from unimodel import cache
from unimodel.figures import registry

log = logging.getLogger(__name__)
TIMINGS = "timings.json"
# the task times of a clean full build on 2 cores (the "full" part of its timings.json, rounded): refresh
# it after a clean full build when runs are added or renamed (a test checks that it knows every run)
REFERENCE_TIMINGS = Path(__file__).with_name("reference_timings.json")
TIMELINE = "timeline.json"  # the last parallel build: which worker ran which task, from when to when
# Dask's defaults cost a PyTorch worker a third of its speed or more (timed on the unified model:
# 14.3 s a task with them, 7.8 s without): the nanny starts each worker with MALLOC_TRIM_THRESHOLD_
# set, which turns off glibc's adaptive mmap threshold, so every large tensor is an mmap and a
# munmap; and a profiler samples the task's stack every 10 ms.
WORKER_SETTINGS = {"distributed.nanny.pre-spawn-environ": {}, "distributed.worker.profile.enabled": False}
HEARTBEAT_S = 300  # without a terminal, say what is running when no task has finished for this long


class BuildError(RuntimeError):
    """A task failed: the message names it and carries its error."""


@dataclass(frozen=True)
class Task:
    id: str  # unique in a build: "run <key>", "result <name>", "export <name>", "figure <name> <lang>", "notebook <path>"
    kind: str  # "run", "result", "export", "figure" or "notebook"
    args: tuple  # what ``execute`` needs: (RunSpec,), (name,), (name,), (name, lang), (path,)
    label: str  # what a person reads in the progress line, stable across builds (the timings' key)
    key: str  # the cache key, checked again where the task runs
    path: Path  # what it makes in the cache: the run's folder, the result's JSON, the ONNX file, the figure's PNG, the executed notebook
    needs: tuple[str, ...] = ()  # ids of the tasks that must be done first
    cached: bool = False  # its artifact is already in the cache


def plan(notebooks: Iterable[str | Path] = (), chapters: Iterable[str] | None = None) -> list[Task]:
    """Every task of the site (or of the chapter modules ``chapters``), each after the tasks it needs."""
    from unimodel.website.notebooks import notebook_path

    registry.load_chapters()
    chapters = tuple(registry.CHAPTERS if chapters is None else chapters)
    tasks: list[Task] = []
    runs_of: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()

    def add_run(spec, needs: tuple[str, ...] = ()) -> str:
        task = Task(f"run {spec.key}", "run", (spec,), f"train {spec.describe()}", spec.key, spec.folder, needs, spec.trained())
        if task.id not in seen:  # two chapters, or two runs, may train the same run: it is trained once
            seen.add(task.id)
            tasks.append(task)
        return task.id

    def add_staged(spec) -> str:
        stage = spec.stage  # a run's first stage is a run of its own, trained before it (with its own first stage, if it has one)
        if stage:
            add_staged(stage)
        return add_run(spec, (f"run {stage.key}",) if stage else ())

    for module in chapters:
        runs_of[module] = tuple(dict.fromkeys(add_staged(spec) for spec in registry.chapter_runs(module)))
    results_of: dict[str, list[str]] = {}
    for name in _after_what_they_use(sorted(n for n, item in registry.RESULTS.items() if item.module in chapters)):
        item = registry.RESULTS[name]
        path = registry.result_path(name)
        loaded = tuple(dict.fromkeys(add_staged(spec) for spec in item.runs())) if item.runs else runs_of.get(item.module, ())
        needs = loaded + tuple(f"result {used}" for used in item.uses)
        tasks.append(Task(f"result {name}", "result", (name,), f"result {name}", path.stem, path, needs, path.exists()))
        results_of.setdefault(item.module, []).append(tasks[-1].id)

    def drawn_from(item: registry.Item) -> tuple[str, ...]:
        """What an export or a figure needs: its chapter's runs and results, and the results it uses."""
        return runs_of.get(item.module, ()) + tuple(results_of.get(item.module, ())) + tuple(f"result {used}" for used in item.uses)

    for name in sorted(n for n, item in registry.EXPORTS.items() if item.module in chapters):
        item = registry.EXPORTS[name]
        path = cache.artifact_path(*registry.export_artifact(name))
        needs = drawn_from(item)
        tasks.append(Task(f"export {name}", "export", (name,), f"export {name}", path.stem, path, needs, path.exists()))
    for lang in registry.LANGUAGES:
        for name in sorted(n for n, item in registry.FIGURES.items() if item.module in chapters):
            item = registry.FIGURES[name]
            path = registry.figure_path(name, lang)
            needs = drawn_from(item)
            tasks.append(Task(f"figure {name} {lang}", "figure", (name, lang), f"figure {name} ({lang})", path.stem, path, needs, path.exists()))
    for notebook in sorted(str(p) for p in notebooks):
        path = notebook_path(notebook)
        label = f"notebook {_shown(notebook)}"  # by path: both languages' notebooks have the same name
        tasks.append(Task(f"notebook {notebook}", "notebook", (notebook,), label, path.parent.name, path, (), path.exists()))
    return tasks


def _shown(path: str | Path) -> str:
    """``path`` relative to the working directory when it is under it ("docs/en/x.ipynb"), else as given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def _after_what_they_use(names: list[str]) -> list[str]:
    """The results ``names`` ordered so that each comes after the results it uses (a cycle, or an unknown one, is an error)."""
    ordered: list[str] = []

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in ordered:
            return
        if name in path:
            raise BuildError(f"results use each other in a cycle: {' -> '.join((*path, name))}")
        if name not in names:
            raise BuildError(f"result {path[-1]!r} uses {name!r}, which no chapter of the build registers")
        for used in registry.RESULTS[name].uses:
            place(used, (*path, name))
        ordered.append(name)

    for name in names:
        place(name, ())
    return ordered


# ------------------------------------------------------------------ one task


def environment() -> dict[str, str]:
    """What a worker must share with this process: the profile, the cache folder, the device."""
    from unimodel.runs import site_device

    return {"UNIMODEL_PROFILE": registry.profile(), "UNIMODEL_CACHE": str(cache.cache_dir().resolve()), "UNIMODEL_DEVICE": site_device()}


def _enter(env: dict[str, str] | None, threads: int | None) -> None:
    """Make this (worker) process build under ``env``; the chapters' budgets are read when they are imported."""
    if env:
        loaded = "unimodel.chapters.vae" in sys.modules
        if loaded and registry.profile() != env["UNIMODEL_PROFILE"]:
            raise BuildError(
                f"this worker imported the chapters under UNIMODEL_PROFILE={registry.profile()}; start it with UNIMODEL_PROFILE={env['UNIMODEL_PROFILE']}"
            )
        os.environ.update(env)
    if threads:
        import torch

        torch.set_num_threads(threads)


def execute(task: Task, env: dict[str, str] | None = None, threads: int | None = None, *_needs) -> tuple[object, float]:
    """Do one task (in this process or a worker, under ``env`` if given, on ``threads``): what the manifest records for it, and its seconds."""
    _enter(env, threads)
    started = time.perf_counter()
    if task.kind == "run":
        (spec,) = task.args
        _same_code(task, spec.key)
        spec.load()
        value = spec.key
    elif task.kind == "result":
        _same_code(task, registry.result_path(*task.args).stem)
        value = registry.compute_result(*task.args)
    elif task.kind == "figure":
        _same_code(task, registry.figure_path(*task.args).stem)
        value = str(registry.render_figure(*task.args))
    elif task.kind == "export":
        from unimodel.website.exports import card_of, exported_model

        (name,) = task.args
        _same_code(task, cache.artifact_path(*registry.export_artifact(name)).stem)
        path = exported_model(name)
        value = {"onnx": str(path), "card": card_of(path)}
    else:
        from unimodel.website.notebooks import executed_notebook

        value = str(executed_notebook(*task.args))
        _same_code(task, Path(value).parent.name)
    return value, time.perf_counter() - started


def _same_code(task: Task, key: str) -> None:
    if key != task.key:
        raise BuildError(
            f"{task.label}: this process computes the key {key}, the build planned {task.key}: "
            "a worker runs other code than the build (install the same version everywhere)"
        )


# ------------------------------------------------------------------ progress


class Progress:
    """One bar over the tasks to compute, or a line per task when stderr is not a terminal."""

    def __init__(self, tasks: list[Task], jobs: int, timings: dict[str, float], timed_here: bool = True):
        self.todo = [t for t in tasks if not t.cached]
        self.jobs = jobs
        self.timings = timings
        self.timed_here = timed_here  # False: the times are the reference build's only
        self.typical = typical_times(tasks, timings)  # what a task never timed counts as, by its kind
        self.running: set[str] = set()
        self.left = {t.id: t for t in self.todo}
        self.started = self.said = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.bar = tqdm(disable=True)  # the real one appears after the announcement

    def estimate(self) -> float | None:
        """Seconds left, from earlier builds' times; None when no task was ever timed.

        A task still to do that was never timed counts as the median timed task of its kind (a new
        run as a median run): counted as an average of the figures and results timed, 20 new runs
        were once estimated at 17 s.
        """
        if not self.timings:
            return None
        left = sum(self.timings.get(t.label, self.typical[t.kind]) for t in self.left.values())
        return left / max(1, min(self.jobs, len(self.left)))

    def announce(self, total: int) -> None:
        runs = sum(t.kind == "run" for t in self.todo)
        if not self.todo:
            log.info("unimodel: all %d tasks are in the cache", total)
            return
        eta = self.estimate()
        how_long = f"about {_duration(eta)}" if eta is not None else "no earlier build timed them, so no estimate yet"
        if eta is not None and not self.timed_here:
            how_long += " if this machine is as fast as the reference build's (2 cores); nothing was timed here yet"
        log.info(
            "unimodel: %d of %d tasks to compute (%d runs to train) with %d worker%s: %s",
            len(self.todo),
            total,
            runs,
            self.jobs,
            "s" if self.jobs > 1 else "",
            how_long,
        )
        self.bar = tqdm(
            total=len(self.todo), unit="task", dynamic_ncols=True, disable=not self.tty, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
        )

    def start(self, task: Task) -> None:
        self.running.add(task.label)
        self._show()

    def now_running(self, labels: Iterable[str]) -> None:
        self.running = set(labels)
        self._show()
        if not self.tty and self.running and time.perf_counter() - self.said > HEARTBEAT_S:  # a log file hears what takes so long
            self.said = time.perf_counter()
            log.info("unimodel: still at work (%s spent): %s", _duration(self.said - self.started), "; ".join(sorted(self.running)))

    def done(self, task: Task, seconds: float) -> None:
        self.running.discard(task.label)
        self.left.pop(task.id, None)
        if self.tty:
            self.bar.update(1)
            self._show()
        else:
            eta = self.estimate()
            left = f", about {_duration(eta)} left" if eta is not None and self.left else ""
            done = len(self.todo) - len(self.left)
            log.info(
                "unimodel: [%d/%d] %s: %.1f s (%s spent%s)", done, len(self.todo), task.label, seconds, _duration(time.perf_counter() - self.started), left
            )
            self.said = time.perf_counter()

    def _show(self) -> None:
        if self.tty:
            eta = self.estimate()
            self.bar.set_postfix_str(("~" + _duration(eta) + " left, " if eta is not None else "") + "; ".join(sorted(self.running))[:80])

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _read_timings() -> tuple[dict[str, float], bool]:
    """Task times of the earlier builds on this machine (``timings.json``) over the reference build's; whether any is this machine's.

    The reference times (``REFERENCE_TIMINGS``, of one clean full build on 2 cores) give a first build
    its order and its estimate; each task timed here replaces its reference time.
    """

    def read(path: Path) -> dict[str, float]:
        try:
            return json.loads(path.read_text(encoding="utf-8")).get(registry.profile(), {})
        except (OSError, ValueError, AttributeError):
            return {}

    here = read(cache.cache_dir() / TIMINGS)
    return {**read(REFERENCE_TIMINGS), **here}, bool(here)


def _write_timings(measured: dict[str, float]) -> None:
    """Add task times to ``timings.json`` (per profile), for the next build's estimate and order."""
    path = cache.cache_dir() / TIMINGS
    with cache.exclusive(path):
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        stored.setdefault(registry.profile(), {}).update(measured)
        from unimodel.checkpoint import atomic_write

        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(stored, indent=1, sort_keys=True), encoding="utf-8"))


# ------------------------------------------------------------------ the build


def default_jobs() -> int:
    """``$UNIMODEL_JOBS``, else the cores this process may use."""
    value = os.environ.get("UNIMODEL_JOBS", "")
    if value:
        try:
            jobs = int(value)
        except ValueError:
            raise BuildError(f"UNIMODEL_JOBS must be a whole number of workers, got {value!r}") from None
        if jobs < 1:
            raise BuildError(f"UNIMODEL_JOBS must be at least 1, got {jobs}")
        return jobs
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def build(notebooks: Iterable[str | Path] = (), jobs: int | None = None, scheduler: str | None = None, chapters: Iterable[str] | None = None) -> dict:
    """Compute every task of the site (or of ``chapters``); the manifest of what the site shows (JSON-able).

    figures: {lang: {name: cached PNG}}; results: {name: dict}; notebooks: {source path: executed copy}.
    Every task trains and computes on one thread, wherever it runs, so that the numbers do not
    depend on how many tasks ran at once.
    """
    jobs = jobs or default_jobs()
    cache.writable_cache_dir()  # before any work: every task writes there
    tasks = plan(notebooks, chapters)
    progress = Progress(tasks, jobs, *_read_timings())
    progress.announce(len(tasks))
    values: dict[str, object] = {}

    def finished(task: Task, value: object, seconds: float) -> None:
        values[task.id] = value
        if not task.cached:
            _write_timings({task.label: seconds})  # at once: a build stopped half way still tells the next one what it timed
            progress.done(task, seconds)

    try:
        with logging_redirect_tqdm() if progress.tty else contextlib.nullcontext():  # log lines above the bar, not through it
            if scheduler or (jobs > 1 and len(progress.todo) > 1):
                _on_dask(tasks, jobs, scheduler, progress, finished)
            else:
                for task in tasks:
                    if not task.cached:
                        progress.start(task)
                    finished(task, *_executed_here(task))
    finally:
        progress.close()
    by_id = {t.id: t for t in tasks}
    manifest: dict = {"figures": {lang: {} for lang in registry.LANGUAGES}, "results": {}, "models": {}, "notebooks": {}}
    for task_id, value in values.items():
        task = by_id[task_id]
        if task.kind == "figure":
            name, lang = task.args
            manifest["figures"][lang][name] = value
        elif task.kind == "result":
            manifest["results"][task.args[0]] = value
        elif task.kind == "export":
            manifest["models"][task.args[0]] = value
        elif task.kind == "notebook":
            manifest["notebooks"][task.args[0]] = value
    return manifest


def typical_times(tasks: list[Task], timings: dict[str, float]) -> dict[str, float]:
    """Per kind of task ("run", "figure", ...), the median time of those of ``tasks`` that were timed: what an untimed one counts as.

    A kind none of them was timed for counts 60 s for a run, 1 s for anything else.
    """
    typical = {}
    for kind in {t.kind for t in tasks}:
        known = [timings[t.label] for t in tasks if t.kind == kind and t.label in timings]
        typical[kind] = statistics.median(known) if known else (60.0 if kind == "run" else 1.0)
    return typical


def critical_paths(tasks: list[Task], timings: dict[str, float]) -> dict[str, float]:
    """Each task's seconds from its start to the end of the longest chain of tasks that wait for it.

    The build starts, of the tasks that are ready, the one with the longest chain first (list
    scheduling by critical path): a result that waits for many runs then does not start last and
    alone. Times are an earlier build's; a task never timed counts as the median of those that
    were (a run as a median run), a cached task as nothing.
    """

    median = typical_times(tasks, timings)
    waiting: dict[str, list[str]] = {t.id: [] for t in tasks}
    for task in tasks:
        for need in task.needs:
            waiting[need].append(task.id)
    chain: dict[str, float] = {}
    for task in reversed(tasks):  # the plan lists every task after those it needs
        own = 0.0 if task.cached else timings.get(task.label, median[task.kind])
        chain[task.id] = own + max((chain[w] for w in waiting[task.id]), default=0.0)
    return chain


def _executed_here(task: Task) -> tuple[object, float]:
    """``execute(task)`` in this process, its error named after the task."""
    try:
        return execute(task, threads=1)
    except BuildError:
        raise
    except Exception as error:
        raise BuildError(f"{task.label} failed: {type(error).__name__}: {error}\n{traceback.format_exc()}") from error


class _ReadyQueue:
    """The tasks whose needs are all done, the longest chain (``critical_paths``) first; ties in the plan's order."""

    def __init__(self, tasks: list[Task], chains: dict[str, float]):
        ids = {task.id for task in tasks}
        self._chains = chains
        self._order = {task.id: i for i, task in enumerate(tasks)}
        self._left = {task.id: {need for need in task.needs if need in ids} for task in tasks}  # needs not done yet
        self._waiters: dict[str, list[Task]] = {}
        self._heap: list[tuple[float, int, Task]] = []
        for task in tasks:
            for need in self._left[task.id]:
                self._waiters.setdefault(need, []).append(task)
            if not self._left[task.id]:
                self._push(task)

    def _push(self, task: Task) -> None:
        heapq.heappush(self._heap, (-self._chains[task.id], self._order[task.id], task))

    def __len__(self) -> int:
        return len(self._heap)

    def pop(self) -> Task:
        return heapq.heappop(self._heap)[2]

    def next_is_cached(self) -> bool:
        return self._heap[0][2].cached

    def done(self, task_id: str) -> None:
        """``task_id`` is done: each task that waited for it alone is ready now."""
        for waiter in self._waiters.pop(task_id, ()):
            left = self._left[waiter.id]
            left.discard(task_id)
            if not left:
                self._push(waiter)


def _timeline(stream: Iterable[dict], by_key: dict[str, Task], started: float) -> list[dict]:
    """Dask's task stream as the build's timeline: each of our tasks' worker and compute start and stop, in seconds since ``started``."""
    rows = []
    for record in stream:
        task = by_key.get(record.get("key"))
        computed = [part for part in record.get("startstops", ()) if part.get("action") == "compute"]
        if task is not None and computed:
            rows.append(
                {
                    "task": task.label,
                    "worker": record.get("worker", "?"),
                    "start": round(computed[0]["start"] - started, 2),
                    "stop": round(computed[-1]["stop"] - started, 2),
                }
            )
    return sorted(rows, key=lambda row: row["start"])


def _idle(timeline: list[dict]) -> dict[str, float]:
    """Each worker's seconds without a task of the build, from the first task's start to the last one's end."""
    if not timeline:
        return {}
    span = max(row["stop"] for row in timeline) - min(row["start"] for row in timeline)
    busy: dict[str, float] = {}
    for row in timeline:
        busy[row["worker"]] = busy.get(row["worker"], 0.0) + row["stop"] - row["start"]
    return {worker: max(0.0, span - seconds) for worker, seconds in busy.items()}


def _on_dask(tasks: list[Task], jobs: int, scheduler: str | None, progress: Progress, finished) -> None:
    """Run the graph on a Dask cluster: ``scheduler``'s, or a local one of ``jobs`` single-threaded worker processes."""
    try:
        from dask.distributed import Client, LocalCluster, get_task_stream, wait
    except ImportError:
        raise BuildError(
            "a parallel build needs dask.distributed: pip install 'dask[distributed]' (make setup installs it), or build with UNIMODEL_JOBS=1"
        ) from None
    env = environment()
    if scheduler:
        client = Client(scheduler, timeout=30)
        cluster = None
        threads = None  # the cluster's own workers decide
    else:
        import dask

        logging.getLogger("distributed").setLevel(logging.ERROR)
        trim = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)  # the workers inherit this process's environment too
        try:
            with dask.config.set(WORKER_SETTINGS):
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR)
        finally:
            if trim is not None:
                os.environ["MALLOC_TRIM_THRESHOLD_"] = trim
        client = Client(cluster)
        threads = 1
    try:
        token = uuid.uuid4().hex[:8]  # a long-lived scheduler must never hand back another build's result
        futures, by_key = {}, {}
        ready = _ReadyQueue(tasks, critical_paths(tasks, progress.timings))
        running: set = set()
        started = time.time()
        with get_task_stream(client) as stream:  # every task's worker and compute times
            while ready or running:
                # one task per worker thread, the longest chain first: Dask places each on a free worker. Given the whole
                # graph at once it assigns tasks to workers by durations it cannot know on a first build, and one worker
                # then idles while tasks wait behind the other's (7 worker-minutes in the last clean build before this)
                slots = max(1, sum(client.nthreads().values()))
                while ready and (ready.next_is_cached() or sum(not by_key[f.key].cached for f in running) < slots):  # a cached task is only read
                    task = ready.pop()
                    needs = [futures[n] for n in task.needs if n in futures]
                    future = client.submit(execute, task, env, threads, *needs, key=f"{task.id} [{token}]", pure=False)
                    futures[task.id] = future
                    by_key[future.key] = task
                    running.add(future)
                try:
                    done = wait(running, timeout=2, return_when="FIRST_COMPLETED").done
                except TimeoutError:  # nothing finished in the last 2 s: refresh what is running
                    done = set()
                running -= done
                for future in done:
                    task = by_key[future.key]
                    if future.status != "finished":
                        error = future.exception()
                        detail = "".join(traceback.format_tb(future.traceback())) if future.traceback() else ""
                        client.cancel(list(running))
                        raise BuildError(f"{task.label} failed: {type(error).__name__}: {error}\n{detail}")
                    finished(task, *future.result())
                    ready.done(task.id)
                processing = client.processing()
                progress.now_running(by_key[key].label for keys in processing.values() for key in keys if key in by_key)
        rows, timeline = _timeline(stream.data, by_key, started), cache.cache_dir() / TIMELINE
        timeline.write_text(json.dumps(rows, indent=0), encoding="utf-8")
        idle = _idle(rows)
        if any(seconds >= 1 for seconds in idle.values()):  # waiting for what other workers compute, or a scheduling gap: the next build's profile
            log.info(
                "unimodel: workers idle between the build's first task and its last: %s (when: %s)",
                ", ".join(f"{worker} {_duration(seconds)}" for worker, seconds in sorted(idle.items())),
                timeline,
            )
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
