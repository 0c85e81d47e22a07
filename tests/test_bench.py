"""``unimodel bench``: the parts that are quick to check (the bench itself takes the time of two clean builds).

The copy of the repository holds what git knows of and runs its own code;
build time is split over the artifacts a build produced; targets are judged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from unimodel.cli import main
from unimodel.website import bench

ROOT = Path(__file__).resolve().parents[1]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_the_copy_holds_what_git_knows_of_and_links_node_modules(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src" / "unimodel").mkdir(parents=True)
    (repo / "node_modules" / "mathjax").mkdir(parents=True)
    (repo / ".gitignore").write_text("/node_modules/\n/.cache/\n", encoding="utf-8")
    (repo / "src" / "unimodel" / "__init__.py").write_text("", encoding="utf-8")
    (repo / "tracked.md").write_text("t", encoding="utf-8")
    (repo / "deleted.md").write_text("d", encoding="utf-8")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    (repo / "deleted.md").unlink()  # tracked, but gone from the working tree
    (repo / "untracked.md").write_text("u", encoding="utf-8")  # new work, not committed yet
    (repo / ".cache").mkdir()
    (repo / ".cache" / "big.pt").write_bytes(b"ignored")

    copy = bench.copy_repository(repo, tmp_path / "copy")
    files = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file() and "node_modules" not in p.parts)
    assert files == [".gitignore", "src/unimodel/__init__.py", "tracked.md", "untracked.md"]
    assert (copy / "node_modules").is_symlink() and (copy / "node_modules" / "mathjax").is_dir()


def test_a_build_in_the_copy_runs_the_copys_code(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    (copy / "src" / "unimodel").mkdir(parents=True)
    (copy / "src" / "unimodel" / "__init__.py").write_text("", encoding="utf-8")
    env = bench.environment(copy, tmp_path / "cache", "http://127.0.0.1:1/")
    assert env["UNIMODEL_CACHE"] == str(tmp_path / "cache") and env["SITE_URL"] == "http://127.0.0.1:1/"
    assert bench.require_copy_package(env, copy) == (copy / "src" / "unimodel" / "__init__.py").resolve()
    # without the copy first on the path, the editable install's package would run: refused
    with pytest.raises(RuntimeError, match="not from"):
        bench.require_copy_package({**env, "PYTHONPATH": ""}, copy)


def test_a_build_is_split_over_the_tasks_its_progress_lines_name() -> None:
    build = bench.Build(
        seconds=30.0,
        started=0.0,
        log=[
            (0.1, "INFO    -  Building documentation..."),
            (0.2, "unimodel: 3 of 40 tasks to compute (1 runs to train) with 2 workers: about 20 s"),
            (5.0, "unimodel: [1/3] train vae latent_dim=2 (seed 0): 12.5 s (13 s spent, about 8 s left)"),
            (7.0, "unimodel: [2/3] figure vae/latent-space (zh): 1.5 s (14 s spent)"),
            (9.0, "unimodel: [3/3] result vae-nll: 4.0 s (18 s spent)"),
        ],
    )
    items = bench.tasks_done(build)
    assert items == [
        {"kind": "training", "name": "vae latent_dim=2 (seed 0)", "seconds": 12.5},
        {"kind": "figure", "name": "vae/latent-space (zh)", "seconds": 1.5},
        {"kind": "result", "name": "vae-nll", "seconds": 4.0},
    ]
    assert bench.by_kind(items) == {"training": 12.5, "figure": 1.5, "result": 4.0}
    assert [item["kind"] for item in bench._top(items, 2)] == ["training", "result"]
    assert bench.tasks_done(bench.Build(seconds=1.0, started=0.0, log=[(0.1, "unimodel: all 40 tasks are in the cache")])) == []


def test_targets_are_judged_and_unmeasured_ones_said_so() -> None:
    report = {
        "profile": "quick",
        "clean_build": {"seconds": 150.0},
        "second_build": {"seconds": 12.0},
        "after_comment_in_loop": {"recomputed": []},
        "tests": None,
        "vae_page": {"bytes": 2_500_000, "typeset_ms": 900},
    }
    verdict = {target["name"]: target["ok"] for target in bench.check_targets(report)}
    assert verdict == {
        "clean_build_s": True,
        "comment_rebuild_tasks": True,
        "second_build_s": False,
        "tests_s": None,
        "vae_page_bytes": True,
        "vae_typeset_ms": True,
    }
    full = {**report, "profile": "full", "clean_build": {"seconds": 1500.0}, "after_comment_in_loop": {"recomputed": ["training vae (seed 0)"]}}
    verdict = {target["name"]: target["ok"] for target in bench.check_targets(full)}
    assert verdict["clean_build_s"] is False and verdict["comment_rebuild_tasks"] is False  # 20 minutes for the full build; a comment retrains nothing
    failed_tests = {**report, "tests": {"seconds": 100.0, "returncode": 1}}
    assert {t["name"]: t["ok"] for t in bench.check_targets(failed_tests)}["tests_s"] is None  # a failing suite has no time to judge


@pytest.mark.parametrize(
    "argv", [["bench"], ["bench", "site"], ["bench", "build", "--page-loads", "0"], ["bench", "build", "--jobs", "0"], ["bench", "build", "--profile", "slow"]]
)
def test_bench_usage_errors_exit_2(argv, capsys) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("unimodel: error:")


def test_bench_is_a_make_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\nbench: setup\n\t$(BIN)/unimodel bench build\n" in makefile
    assert "make bench" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_bench_help_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "unimodel.cli", "bench", "build", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--with-tests" in done.stdout and "--profile" in done.stdout and "--jobs" in done.stdout
