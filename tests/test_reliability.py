"""The figure pipeline under stress: killed builds, and builds repeated.

A build killed at any moment (SIGKILL: no handler runs, nothing is cleaned
up) must never leave a half-written checkpoint, figure or result that a
later build would use: the later build finishes, with the same numbers an
uninterrupted one gives. A killed process cannot remove its temporary file
(``.name.PID@HOST.XXXX.tmp``): it is never read, and the next write into the
same folder removes it.

Two builds of the same code with the same seeds, in fresh caches and
separate processes, produce exactly the same numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unimodel.checkpoint import CheckpointError, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 80  # a small VAE trains ~20 epochs a second on one core: a few seconds in all
MODEL = {"hidden_dim": 16}

# Train one run into the cache, as the site build does, and print what it learned.
TRAIN_SCRIPT = f"""
import json
from unimodel.runs import cached_run
from unimodel.training import TrainConfig

run = cached_run("vae", {MODEL!r}, TrainConfig(epochs={EPOCHS}, patience=0, seed=0, device="cpu"))
result = run.result
print(json.dumps({{"history": result.history, "best_epoch": result.best_epoch, "best_val": result.best_val}}))
"""

# The same, but the third checkpoint write stops half-way (as if the process
# were killed while writing it) and says so by creating $STOPPED.
STOP_IN_THIRD_WRITE = """
import os, time
import torch

real_save, writes = torch.save, []

def save(payload, path, *args, **kwargs):
    writes.append(path)
    if len(writes) == 3:
        with open(path, "wb") as f:
            f.write(b"PK\\x03\\x04 half of a checkpoint")
            f.flush()
        open(os.environ["STOPPED"], "w").close()
        time.sleep(600)
    return real_save(payload, path, *args, **kwargs)

torch.save = save
"""


def _env(cache: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "UNIMODEL_CACHE": str(cache), **extra}


def _without_seconds(value):
    """``value`` with every key that mentions seconds (wall-clock times) left out, recursively."""
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


def _train(cache: Path, prefix: str = "") -> dict:
    """Run the training script to the end in a fresh process; what it printed."""
    done = subprocess.run([sys.executable, "-c", prefix + TRAIN_SCRIPT], cwd=cache.parent, env=_env(cache), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def _wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process ended (exit {process.returncode}) before {what}: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.01)


def _kill(process: subprocess.Popen) -> None:
    assert process.poll() is None, "the process had already finished: it was not killed mid-way (raise EPOCHS)"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def cache_problems(cache: Path) -> list[str]:
    """Every artifact in the cache that a later build would read and that is not whole.

    Temporary files (a leading '.', ending '.tmp') are skipped: they are
    never read by name; so are the locks a killed process leaves under
    ``locks/`` (the kernel releases them with the process, and they hold nothing).
    """
    from PIL import Image

    problems = []
    for path in sorted(p for p in cache.rglob("*") if p.is_file()):
        rel = path.relative_to(cache)
        if (path.name.startswith(".") and path.name.endswith(".tmp")) or rel.parts[0] == "locks":
            continue
        try:
            if path.name == "checkpoint.pt":
                load_checkpoint(path)
            elif path.name == "done":
                load_checkpoint(path.parent / "checkpoint.pt")  # a finished run has its checkpoint
            elif path.suffix == ".png":
                with Image.open(path) as image:
                    image.load()
            elif path.suffix in (".json", ".ipynb"):
                json.loads(path.read_text(encoding="utf-8"))
            else:
                problems.append(f"{rel}: an unknown kind of file")
        except (CheckpointError, OSError, ValueError) as error:
            problems.append(f"{rel}: {type(error).__name__}: {error}")
    return problems


def _leftovers(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob(".*.tmp"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The run trained straight through, in a cache of its own."""
    return _train(tmp_path_factory.mktemp("straight") / "cache")


def _resume_and_compare(cache: Path, uninterrupted: dict) -> None:
    """A later build on the killed cache finishes, marks the run done, and learned what an uninterrupted one did."""
    (folder,) = (cache / "runs").iterdir()
    bogus = folder / ".checkpoint.pt.planted.tmp"  # what a kill mid-write leaves, made obvious
    bogus.write_bytes(b"not a checkpoint at all")
    resumed = _train(cache)
    assert (folder / "done").exists(), "the finished run is not marked done"
    assert not cache_problems(cache)
    assert len(load_checkpoint(folder / "checkpoint.pt")["loop"]["history"]) == EPOCHS
    assert _without_seconds(resumed) == _without_seconds(uninterrupted), "the resumed run learned something else"
    assert bogus.read_bytes() == b"not a checkpoint at all", "a temporary file was read or rewritten"


def test_a_training_killed_after_a_checkpoint_resumes_to_the_same_result(tmp_path: Path, uninterrupted: dict) -> None:
    cache = tmp_path / "cache"
    process = subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT], cwd=tmp_path, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: any(cache.glob("runs/*/checkpoint.pt")), process, "checkpoint")
    _kill(process)
    (folder,) = (cache / "runs").iterdir()
    assert not (folder / "done").exists(), "the run was marked done before it finished"
    assert not cache_problems(cache), cache_problems(cache)
    killed_at = len(load_checkpoint(folder / "checkpoint.pt")["loop"]["history"])
    assert 1 <= killed_at < EPOCHS
    _resume_and_compare(cache, uninterrupted)


def test_a_training_killed_while_writing_a_checkpoint_keeps_the_last_whole_one(tmp_path: Path, uninterrupted: dict) -> None:
    cache, stopped = tmp_path / "cache", tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, "-c", STOP_IN_THIRD_WRITE + TRAIN_SCRIPT],
        cwd=tmp_path,
        env=_env(cache, STOPPED=str(stopped)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(stopped.exists, process, "third checkpoint write")
    _kill(process)
    (folder,) = (cache / "runs").iterdir()
    (partial,) = _leftovers(cache)  # the write that was cut short, under its temporary name
    assert partial.read_bytes().startswith(b"PK") and partial.parent == folder
    assert load_checkpoint(folder / "checkpoint.pt")["loop"]["epoch"] == 2, "the checkpoint is not the last whole one"
    assert not (folder / "done").exists()
    assert not cache_problems(cache), cache_problems(cache)
    _resume_and_compare(cache, uninterrupted)
    assert not partial.exists(), "the killed writer's temporary file outlived the resumed run"


FIGURE_SCRIPT = """
import os, time
from unimodel import cache

def produce(tmp):
    with open(tmp, "wb") as f:
        f.write(b"\\x89PNG\\r\\n\\x1a\\n half of a figure")
        f.flush()
    open(os.environ["STOPPED"], "w").close()
    time.sleep(600)

cache.cached_path("figures", "killed-figure-zh-0123", ".png", produce)
"""


def test_a_figure_killed_while_being_written_is_drawn_again(tmp_path: Path, monkeypatch) -> None:
    cache, stopped = tmp_path / "cache", tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, "-c", FIGURE_SCRIPT],
        cwd=tmp_path,
        env=_env(cache, STOPPED=str(stopped)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(stopped.exists, process, "half-written figure")
    _kill(process)
    final = cache / "figures" / "killed-figure-zh-0123.png"
    assert not final.exists(), "a half-written figure is in the cache under its real name"
    assert len(_leftovers(cache)) == 1
    assert not cache_problems(cache)

    from matplotlib import pyplot as plt

    from unimodel import cache as cache_module

    monkeypatch.setenv("UNIMODEL_CACHE", str(cache))
    drawn = []

    def produce(tmp: str) -> None:
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.plot([0, 1], [0, 1])
        fig.savefig(tmp, format="png")
        plt.close(fig)
        drawn.append(tmp)

    assert cache_module.cached_path("figures", "killed-figure-zh-0123", ".png", produce) == final
    assert drawn, "the later build took the killed one's figure instead of drawing it"
    assert not cache_problems(cache)


def test_the_cache_check_finds_half_written_files(tmp_path: Path) -> None:
    """cache_problems itself: a cut checkpoint, figure or result under its real name is reported."""
    cache = tmp_path / "cache"
    (cache / "runs" / "abc").mkdir(parents=True)
    (cache / "runs" / "abc" / "checkpoint.pt").write_bytes(b"PK\x03\x04 half")
    (cache / "runs" / "abc" / "done").touch()
    (cache / "figures").mkdir()
    (cache / "figures" / "x-zh-1.png").write_bytes(b"\x89PNG\r\n\x1a\n half")
    (cache / "results").mkdir()
    (cache / "results" / "r-1.json").write_text('{"a": 1', encoding="utf-8")
    (cache / "results" / ".r-1.json.x.tmp").write_text("{", encoding="utf-8")  # a temporary file: skipped
    assert [problem.split(":")[0] for problem in cache_problems(cache)] == [
        "figures/x-zh-1.png",
        "results/r-1.json",
        "runs/abc/checkpoint.pt",
        "runs/abc/done",
    ]


# ------------------------------------------------------------ repeated builds

# One registered result that trains models, computed as the site computes it
# (registry.compute_result into an empty cache), with the chapter's training
# settings cut down to a few epochs so that it takes seconds; then the full
# history and test metrics of the runs it trained.
RESULT = "vae-l2"
REPEAT_SCRIPT = f"""
import dataclasses, json
from unimodel.data import digits_splits
from unimodel.figures import registry
from unimodel.chapters import vae

vae.TRAIN = dataclasses.replace(vae.TRAIN, epochs=12, device="cpu")
registry.load_chapters()
result = registry.compute_result({RESULT!r})
runs = {{}}
for name in ("l2-only", "l2-with-kl"):  # the runs {RESULT} trains
    run = vae.run(name)
    runs[name] = {{
        "history": run.result.history,
        "best_epoch": run.result.best_epoch,
        "best_val": run.result.best_val,
        "evaluate": run.spec.evaluate(run.model, digits_splits(), k=100, seed=0),
    }}
print(json.dumps({{"result": result, "runs": runs}}))
"""


def test_two_builds_give_the_same_numbers(tmp_path: Path) -> None:
    """One after the other (side by side, their threads would share two cores badly), each in a fresh cache."""
    outputs = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        done = subprocess.run([sys.executable, "-c", REPEAT_SCRIPT], cwd=folder, env=_env(folder / "cache"), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append(json.loads(done.stdout.splitlines()[-1]))
    first, second = (_without_seconds(output) for output in outputs)
    assert first["runs"]["l2-only"]["history"], "nothing was trained"
    assert "seconds" in json.dumps(outputs[0]), "no wall-clock field was left out: is the comparison still about numbers only?"
    assert first == second


def test_without_seconds_drops_only_wall_clock_keys() -> None:
    value = {"seconds": 1.5, "train_seconds": 2, "nll": 88.6, "rows": [{"seconds": 3, "kl": 0.5}]}
    assert _without_seconds(value) == {"nll": 88.6, "rows": [{"kl": 0.5}]}
