"""The build engine: the task graph, serial and on Dask with the same results, progress, errors, one producer per artifact."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unimodel import cache
from unimodel.figures import registry
from unimodel.website import build

SMALL = ("unimodel.chapters.vae", "unimodel.chapters.clip")  # two chapters whose quick runs take seconds


def _by_id(tasks):
    return {t.id: t for t in tasks}


def test_every_task_has_its_own_label_the_two_languages_notebooks_too(quick):
    root = Path(__file__).resolve().parents[1]
    tasks = build.plan(notebooks=[root / "docs" / "vae-notebook.ipynb", root / "docs" / "en" / "vae-notebook.ipynb"])
    labels = [t.label for t in tasks]
    assert len(labels) == len(set(labels)), sorted(label for label in labels if labels.count(label) > 1)
    assert sum(t.kind == "notebook" for t in tasks) == 2


def test_the_plan_puts_every_task_after_what_it_needs(quick):
    tasks = build.plan()
    ids = [t.id for t in tasks]
    assert len(ids) == len(set(ids)), "a task is planned twice"
    position = {task_id: i for i, task_id in enumerate(ids)}
    for task in tasks:
        assert all(position[need] < position[task.id] for need in task.needs), task.id
    kinds = {t.kind for t in tasks}
    assert kinds == {"run", "result", "export", "figure"}
    assert sum(t.kind == "figure" for t in tasks) == 2 * len(registry.FIGURES)
    assert sum(t.kind == "export" for t in tasks) == len(registry.EXPORTS)
    assert sum(t.kind == "result" for t in tasks) == len(registry.RESULTS)
    declared = {spec.key for module in registry.CHAPTERS for spec in registry.chapter_runs(module)}
    assert {t.key for t in tasks if t.kind == "run"} == declared  # each run once, though two chapters may declare it
    by_id = _by_id(tasks)
    # a chapter's figure needs its runs and results; a result needs the results it uses
    latent = by_id["figure vae/latent-space en"]
    assert {f"run {spec.key}" for spec in registry.chapter_runs("unimodel.chapters.vae")} <= set(latent.needs)
    assert "result vae-nll" in latent.needs
    assert "result vae-nll" in by_id["result pixelcnn-nll"].needs
    assert not any(need.startswith("run") for need in by_id["figure bagel/architecture zh"].needs)  # a diagram trains nothing
    # a result that declares the runs it loads waits for those only: CapFilt trains its own models beside the ablation's
    from unimodel.chapters import blip

    assert by_id["result blip-capfilt"].needs == (f"run {blip.spec().key}",)
    assert len(by_id["result blip-ablation"].needs) == len(registry.chapter_runs("unimodel.chapters.blip")) > 1


def test_two_chapters_that_train_the_same_run_share_it(quick):
    """The taxonomy table's long DDPM is the diffusion chapter's digits model: one run, one task."""
    from unimodel.chapters import diffusion, taxonomy

    shared = {s.key for s in registry.chapter_runs(taxonomy.__name__)} & {s.key for s in registry.chapter_runs(diffusion.__name__)}
    assert shared == {diffusion.spec("digits").key}


def test_a_chapter_that_uses_another_chapters_result_is_keyed_by_it(quick, monkeypatch):
    before = registry.result_key(registry.RESULTS["pixelcnn-nll"])
    monkeypatch.setitem(registry.RESULTS, "vae-nll", registry.Item("vae-nll", lambda: {}, "unimodel.chapters.gan"))  # other code behind it
    assert registry.result_key(registry.RESULTS["pixelcnn-nll"]) != before


def test_a_cycle_of_uses_is_an_error(quick, monkeypatch):
    monkeypatch.setitem(registry.RESULTS, "vae-nll", registry.Item("vae-nll", lambda: {}, "unimodel.chapters.vae", ("pixelcnn-nll",)))
    with pytest.raises(build.BuildError, match=r"cycle: .*pixelcnn-nll -> vae-nll -> pixelcnn-nll|cycle: .*vae-nll -> pixelcnn-nll -> vae-nll"):
        build.plan()


def _measured(results: dict) -> dict:
    """The results without the wall-clock times they report (training seconds, ms per image), which no two builds share."""
    if isinstance(results, dict):
        return {k: _measured(v) for k, v in results.items() if not any(word in k for word in ("seconds", "ms_per"))}
    return [_measured(v) for v in results] if isinstance(results, list) else results


def _small_build(jobs=1, scheduler=None):
    return build.build(jobs=jobs, scheduler=scheduler, chapters=SMALL)


def test_a_serial_build_computes_each_task_once_then_reads_the_cache(quick, caplog):
    caplog.set_level(logging.INFO, logger="unimodel.website.build")
    manifest = _small_build()
    assert set(manifest["results"]) == {n for n, item in registry.RESULTS.items() if item.module in SMALL} >= {"vae-vqvae-scores", "clip-scores"}
    assert set(manifest["figures"]["zh"]) == {n for n, item in registry.FIGURES.items() if item.module in SMALL}
    timings = json.loads((quick / build.TIMINGS).read_text())["quick"]
    planned = build.plan(chapters=SMALL)
    assert set(timings) == {t.label for t in planned} and all(v >= 0 for v in timings.values())
    assert all(t.cached for t in planned)  # everything is in the cache now
    assert f"{len(planned)} of {len(planned)} tasks to compute" in caplog.text
    assert f"[{len(planned)}/{len(planned)}]" in caplog.text  # a line per task when stderr is not a terminal
    again = _small_build()
    assert again == manifest
    assert json.loads((quick / build.TIMINGS).read_text())["quick"] == timings  # nothing was computed, so nothing re-timed


@pytest.mark.distributed
def test_a_dask_cluster_of_two_workers_builds_the_same_files(quick, tmp_path, monkeypatch):
    """A cluster started apart from the build, as a user's would be (the site build of the suite runs JOBS=cores)."""
    from dask.distributed import LocalCluster

    serial = _small_build(jobs=1)
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cluster-cache"))
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "")  # the nanny sets it in this process: put back as it was afterwards
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        parallel = _small_build(scheduler=cluster.scheduler_address)
    assert _measured(parallel["results"]) == _measured(serial["results"])
    for lang in registry.LANGUAGES:
        for name, png in serial["figures"][lang].items():
            other = parallel["figures"][lang][name]
            assert other.startswith(str(tmp_path / "cluster-cache"))
            assert Path(other).read_bytes() == Path(png).read_bytes(), f"{name} ({lang}) differs"
    assert parallel["models"].keys() == serial["models"].keys() and serial["models"]
    for name, model in serial["models"].items():
        assert parallel["models"][name]["card"] == model["card"], f"{name}: the exported model differs"


@pytest.mark.distributed
def test_local_workers_start_without_the_settings_that_slow_pytorch(monkeypatch):
    import dask
    from dask.distributed import Client, LocalCluster

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)  # as _on_dask does for its workers
    with (
        dask.config.set(build.WORKER_SETTINGS),
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        (seen,) = client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), dask.config.get("distributed.worker.profile.enabled"))).values()
    assert seen == (None, False)


def test_a_failing_task_fails_the_build_and_names_itself(quick, monkeypatch):
    def broken():
        raise ZeroDivisionError("no numbers today")

    monkeypatch.setitem(registry.RESULTS, "vae-vqvae-scores", registry.Item("vae-vqvae-scores", broken, "unimodel.chapters.vae"))
    with pytest.raises(build.BuildError, match="result vae-vqvae-scores failed: ZeroDivisionError: no numbers today"):
        _small_build()
    assert not registry.result_path("vae-vqvae-scores").exists()
    timed = json.loads((quick / build.TIMINGS).read_text())["quick"]
    assert any(label.startswith("train vqvae") for label in timed)  # what finished before the failure is timed for the next build


def test_a_worker_with_other_code_is_refused(quick):
    task = next(t for t in build.plan(chapters=SMALL) if t.kind == "result")
    stale = build.Task(task.id, task.kind, task.args, task.label, "0" * 20, task.path, task.needs)
    with pytest.raises(build.BuildError, match="runs other code than the build"):
        build.execute(stale)


def test_a_worker_started_under_another_profile_is_refused(quick):
    env = {**build.environment(), "UNIMODEL_PROFILE": "full"}
    with pytest.raises(build.BuildError, match="start it with UNIMODEL_PROFILE=full"):
        build.execute(build.plan(chapters=SMALL)[0], env)


def test_the_estimate_comes_from_earlier_timings(quick):
    tasks = [build.Task(f"result r{i}", "result", (f"r{i}",), f"result r{i}", "k", Path("r.json")) for i in range(4)]
    progress = build.Progress(tasks, jobs=2, timings={"result r0": 10.0, "result r1": 30.0})
    assert progress.estimate() == pytest.approx((10 + 30 + 2 * 20) / 2)  # untimed tasks count as the median of the timed ones
    assert build.Progress(tasks, jobs=1, timings={}).estimate() is None
    progress.done(tasks[1], 30.0)
    assert progress.estimate() == pytest.approx((10 + 2 * 20) / 2)


def test_a_run_never_timed_counts_as_a_median_run_not_as_a_figure(quick):
    def task(name, kind, cached=False):
        return build.Task(name, kind, (), name, "k", Path(name), (), cached)

    tasks = [task("old run", "run", cached=True), task("other run", "run", cached=True), task("new run", "run"), task("figure", "figure")]
    progress = build.Progress(tasks, jobs=1, timings={"old run": 100.0, "other run": 300.0, "figure": 1.0})
    assert progress.estimate() == pytest.approx(200.0 + 1.0)


def test_a_first_build_goes_by_the_reference_timings_until_this_machine_has_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("UNIMODEL_PROFILE", "full")
    reference = json.loads(build.REFERENCE_TIMINGS.read_text(encoding="utf-8"))["full"]
    timings, timed_here = build._read_timings()
    assert timings == reference and not timed_here
    label = next(iter(reference))
    build._write_timings({label: reference[label] + 1, "train a new run (seed 0)": 5.0})
    timings, timed_here = build._read_timings()
    assert timed_here and timings[label] == reference[label] + 1 and timings["train a new run (seed 0)"] == 5.0
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    assert build._read_timings() == ({}, False)  # the reference is of the full profile only


def test_the_reference_timings_know_every_run_of_the_full_build(tmp_path):
    """A run missing from them starts as a median run on a first build: refresh the file after a clean full build."""
    script = "from unimodel.website import build\nfor t in build.plan():\n    print(t.label) if t.kind == 'run' else None"
    env = {**os.environ, "UNIMODEL_PROFILE": "full", "UNIMODEL_CACHE": str(tmp_path / "cache")}
    labels = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    reference = json.loads(build.REFERENCE_TIMINGS.read_text(encoding="utf-8"))["full"]
    missing = sorted(label for label in labels if label and label not in reference)
    assert len(labels) > 50 and not missing, f"runs with no reference time in {build.REFERENCE_TIMINGS.name}: {missing}"


def test_the_head_of_the_longest_chain_of_work_starts_first():
    def task(name, kind="run", needs=(), cached=False):
        return build.Task(name, kind, (), name, "k", Path(name), tuple(needs), cached)

    # a short run that a long result waits for, a longer run that nothing waits for, one never timed
    short, long_, untimed = task("short"), task("long"), task("untimed")
    tasks = [short, long_, untimed, task("slow result", "result", ["short"]), task("cached", "result", ["long"], cached=True)]
    chains = build.critical_paths(tasks, {"short": 10.0, "long": 100.0, "slow result": 300.0, "cached": 50.0})
    assert chains["short"] == 310.0  # it heads 310 s of work: it goes before the 100 s run
    assert chains["long"] == 100.0  # what is cached costs nothing
    assert chains["untimed"] == 55.0  # the median of the timed runs (10, 100)
    assert chains["short"] > chains["long"] > chains["untimed"]


def test_a_log_hears_what_runs_when_nothing_finishes_for_a_while(quick, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="unimodel.website.build")
    tasks = [build.Task(f"result r{i}", "result", (f"r{i}",), f"result r{i}", "k", Path("r.json")) for i in range(2)]
    progress = build.Progress(tasks, jobs=2, timings={})
    progress.now_running(["result r0", "result r1"])
    assert "still at work" not in caplog.text  # just started
    monkeypatch.setattr(build, "HEARTBEAT_S", 0.0)
    progress.now_running(["result r0", "result r1"])
    assert "still at work" in caplog.text and "result r0; result r1" in caplog.text


def test_jobs_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("UNIMODEL_JOBS", "3")
    assert build.default_jobs() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("UNIMODEL_JOBS", bad)
        with pytest.raises(build.BuildError, match="UNIMODEL_JOBS must be"):
            build.default_jobs()
    monkeypatch.delenv("UNIMODEL_JOBS")
    assert build.default_jobs() == len(os.sched_getaffinity(0))


def _compute_slowly(folder: str, counter: str) -> None:
    os.environ["UNIMODEL_CACHE"] = folder

    def compute():
        with open(counter, "a") as f:
            f.write("x")
        time.sleep(0.5)
        return {"value": 1}

    cache.cached_json("results", "shared", compute)


def test_two_processes_asking_for_one_artifact_compute_it_once(tmp_path):
    counter = tmp_path / "calls"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_compute_slowly, args=(str(tmp_path / "cache"), str(counter))) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert counter.read_text() == "x"
    assert json.loads((tmp_path / "cache" / "results" / "shared.json").read_text()) == {"value": 1}
    assert not any((tmp_path / "cache" / "locks").iterdir())  # each holder removed its lock


def test_a_workers_idle_time_is_the_builds_span_less_its_tasks():
    timeline = [
        {"task": "a", "worker": "w1", "start": 0.0, "stop": 10.0},
        {"task": "b", "worker": "w2", "start": 1.0, "stop": 4.0},
        {"task": "c", "worker": "w2", "start": 6.0, "stop": 12.0},
        {"task": "d", "worker": "w1", "start": 10.0, "stop": 11.5},
    ]
    assert build._idle(timeline) == {"w1": 0.5, "w2": 3.0}
    assert build._idle([]) == {}


def test_the_timeline_keeps_our_tasks_compute_times_in_order():
    task = build.Task(id="run a", kind="run", args=(), label="train a", key="k", path=Path("runs/k"))
    stream = [
        {
            "key": "run a [t]",
            "worker": "w2",
            "startstops": [{"action": "transfer", "start": 100.0, "stop": 101.0}, {"action": "compute", "start": 101.0, "stop": 130.5}],
        },
        {"key": "someone else's", "worker": "w1", "startstops": [{"action": "compute", "start": 90.0, "stop": 95.0}]},
        {"key": "run a [t]", "worker": "w1", "startstops": []},  # nothing computed: no row
    ]
    assert build._timeline(stream, {"run a [t]": task}, 100.0) == [{"task": "train a", "worker": "w2", "start": 1.0, "stop": 30.5}]


def test_a_task_is_ready_once_its_needs_are_done_the_longest_chain_first():
    def task(name, needs=(), cached=False):
        return build.Task(id=name, kind="run", args=(), label=name, key=name, path=Path(name), needs=needs, cached=cached)

    a, b, c, d, e = task("a"), task("b"), task("c", ("a", "b")), task("d", ("a",)), task("e", cached=True)
    ready = build._ReadyQueue([a, b, c, d, e], {"a": 5.0, "b": 9.0, "c": 1.0, "d": 7.0, "e": 0.0})
    assert len(ready) == 3 and not ready.next_is_cached()
    assert [ready.pop().id for _ in range(3)] == ["b", "a", "e"]
    ready.done("a")
    assert [ready.pop().id for _ in range(len(ready))] == ["d"]  # c still waits for b
    ready.done("b")
    assert ready.pop().id == "c" and not ready
