"""The ``unimodel`` command: train, resume, sample, eval, and its errors.

Most calls go through ``unimodel.cli.main([...])`` in this process; a few run
the installed console script, to see exactly what a user sees.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unimodel.checkpoint import load_checkpoint
from unimodel.cli import main
from unimodel.recipes import MODELS

TRAIN = ["train", "vae", "--hidden-dim", "16", "--batch-size", "128"]


def _console_script() -> list[str]:
    """The installed ``unimodel`` next to this Python (the venv's), else the module."""
    script = Path(sys.executable).parent / "unimodel"
    if script.exists():
        return [str(script)]
    found = shutil.which("unimodel")
    return [found] if found else [sys.executable, "-m", "unimodel.cli"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained once by the CLI for the tests of this module; (folder, its stdout)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        code = main([*TRAIN, "--epochs", "2", "--out", str(out)])
    assert code == 0
    return out, stdout.getvalue()


def _error(capsys, argv: list[str]) -> str:
    """Run ``main(argv)``, expect a usage error: exit 2, one line on stderr, no traceback; that line."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("unimodel: error: ")
    assert "Traceback" not in captured.err
    assert captured.out == ""
    return lines[0]


# ------------------------------------------------------------------ train and resume


def test_train_prints_json_and_writes_a_checkpoint(trained):
    out, stdout = trained
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["out"] == str(out) and report["epochs"] == 2
    assert 1 <= report["best_epoch"] <= 2 and report["best_val"] > 0
    saved = load_checkpoint(out / "checkpoint.pt")
    assert saved["meta"]["model"] == "vae" and saved["meta"]["config"]["hidden_dim"] == 16
    assert saved["train_config"]["epochs"] == 2 and saved["train_config"]["batch_size"] == 128
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]


def test_training_again_without_resume_is_refused(capsys, trained):
    out, _ = trained
    before = (out / "checkpoint.pt").read_bytes()
    line = _error(capsys, [*TRAIN, "--epochs", "2", "--out", out])
    assert "--resume" in line
    assert (out / "checkpoint.pt").read_bytes() == before


def test_resume_continues_the_run(capsys, tmp_path):
    out = tmp_path / "run"
    assert main([*TRAIN, "--epochs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "vae", "--resume", "--epochs", "3", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["epochs"] == 3
    saved = load_checkpoint(out / "checkpoint.pt")
    assert [record["epoch"] for record in saved["loop"]["history"]] == [1, 2, 3]
    assert saved["meta"]["config"]["hidden_dim"] == 16  # the saved model settings are kept
    assert saved["train_config"]["epochs"] == 3 and saved["train_config"]["batch_size"] == 128


def test_resume_refuses_other_model_settings(capsys, trained):
    out, _ = trained
    before = (out / "checkpoint.pt").read_bytes()
    line = _error(capsys, ["train", "vae", "--resume", "--hidden-dim", "32", "--epochs", "3", "--out", out])
    assert "hidden_dim" in line
    assert (out / "checkpoint.pt").read_bytes() == before


def test_resume_refuses_another_optimizer(capsys, trained):
    out, _ = trained
    before = (out / "checkpoint.pt").read_bytes()
    line = _error(capsys, ["train", "vae", "--resume", "--optimizer", "adam", "--epochs", "3", "--out", out])
    assert "optimizer" in line
    assert (out / "checkpoint.pt").read_bytes() == before


# ------------------------------------------------------------------ sample and eval


def test_sample_npy(capsys, trained, tmp_path):
    out, _ = trained
    target = tmp_path / "x.npy"
    assert main(["sample", str(out), "--n", "5", "--out", str(target)]) == 0
    assert json.loads(capsys.readouterr().out)["shape"] == [5, 64]
    images = np.load(target)
    assert images.shape == (5, 64)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["x.npy"]
    # the seed fixes the images
    again = tmp_path / "y.npy"
    assert main(["sample", str(out), "--n", "5", "--out", str(again)]) == 0
    assert np.array_equal(np.load(again), images)


def test_sample_png(capsys, trained, tmp_path):
    out, _ = trained
    target = tmp_path / "grid.png"
    assert main(["sample", str(out), "--n", "4", "--out", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(capsys.readouterr().out)["n"] == 4


def test_sample_refuses_other_file_types(capsys, trained, tmp_path):
    out, _ = trained
    line = _error(capsys, ["sample", out, "--n", "5", "--out", tmp_path / "x.txt"])
    assert ".png or .npy" in line
    assert not (tmp_path / "x.txt").exists()


def test_eval_prints_json(capsys, trained):
    out, _ = trained
    assert main(["eval", str(out), "--k", "10"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["k"] == 10 and metrics["images"] == 447 and metrics["model"] == "vae"
    assert 0 < metrics["nll_is"] <= metrics["nll_elbo"] + 1.0


# ------------------------------------------------------------------ errors


def test_unknown_model(capsys, tmp_path):
    line = _error(capsys, ["train", "glow", "--out", tmp_path / "glow"])
    assert "glow" in line and "vae" in line and "flow" in line
    assert not (tmp_path / "glow").exists()


@pytest.mark.parametrize(
    "flags",
    [["--latent-dim", "-3"], ["--hidden-dim", "0"], ["--epochs", "-1"], ["--batch-size", "0"], ["--lr", "-0.1"], ["--likelihood", "poisson"]],
)
def test_bad_training_settings_are_refused_before_any_work(capsys, tmp_path, flags):
    out = tmp_path / "run"
    _error(capsys, ["train", "vae", *flags, "--out", out])
    assert not out.exists()


def test_bad_numbers_for_sample_and_eval(capsys, trained, tmp_path):
    out, _ = trained
    assert "--n" in _error(capsys, ["sample", out, "--n", "-1", "--out", tmp_path / "x.npy"])
    assert "--n" in _error(capsys, ["sample", out, "--n", "0", "--out", tmp_path / "x.npy"])
    assert "--k" in _error(capsys, ["eval", out, "--k", "0"])
    _error(capsys, ["train", "vae", "--hidden-dim", "wide", "--out", tmp_path / "run"])
    assert not (tmp_path / "x.npy").exists()


def test_missing_checkpoint(capsys, tmp_path):
    for argv in (["eval", tmp_path / "nothing"], ["sample", tmp_path / "nothing", "--out", tmp_path / "x.npy"]):
        assert "no checkpoint" in _error(capsys, argv)
    assert not (tmp_path / "x.npy").exists()


def test_corrupt_checkpoint_is_reported_and_left_alone(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    corrupt = os.urandom(2048)
    (run / "checkpoint.pt").write_bytes(corrupt)
    for argv in (
        ["eval", run],
        ["sample", run, "--out", tmp_path / "x.npy"],
        ["train", "vae", "--resume", "--epochs", "2", "--out", run],
        ["train", "vae", "--epochs", "2", "--out", run],  # refused: it exists
    ):
        _error(capsys, argv)
        assert (run / "checkpoint.pt").read_bytes() == corrupt
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]


def test_unwritable_output(capsys, trained, tmp_path):
    out, _ = trained
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    for argv in (
        [*TRAIN, "--epochs", "1", "--out", "/proc/nope/dir"],
        [*TRAIN, "--epochs", "1", "--out", a_file / "dir"],
        ["sample", out, "--out", "/proc/nope/x.npy"],
        ["sample", out, "--out", a_file / "x.png"],
    ):
        assert "cannot write" in _error(capsys, argv)
    assert a_file.read_text() == "not a folder"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "vae", "--bogus", "1", "--out", "{tmp}/run"],
        ["sample", "{tmp}/run", "--out", "{tmp}/x.npy", "--frobnicate"],
        ["eval"],
        ["train", "vae"],
        [],
        ["paint"],
    ],
)
def test_unknown_flags_and_missing_arguments(capsys, tmp_path, argv):
    _error(capsys, [a.format(tmp=tmp_path) for a in argv])
    assert not (tmp_path / "run").exists()


def test_help_exits_zero(capsys):
    for argv in (["--help"], ["train", "vae", "--help"]):
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 0
    text = capsys.readouterr().out
    assert "train" in text and "sample" in text and "eval" in text
    assert "--latent-dim" in text and "size of z" in text  # the model's flags, with the config's comments


@pytest.mark.parametrize("model", MODELS)
def test_every_model_flag_says_what_it_does(capsys, model):
    with pytest.raises(SystemExit):
        main(["train", model, "--help"])
    flags = capsys.readouterr().out.split("model:")[1].split("training:")[0]  # the model's group, up to the training settings
    helps = re.findall(r"^  --[\w-]+ \w+\s+(.*)$", flags, re.M)
    assert helps and not [h for h in helps if h.startswith("(default")], model  # inherited fields keep their comments too


# ------------------------------------------------------------------ the installed command


def test_console_script(trained, tmp_path):
    out, _ = trained
    env = {**os.environ, "UNIMODEL_CACHE": str(tmp_path / "cache")}
    ok = subprocess.run([*_console_script(), "sample", str(out), "--n", "3", "--out", str(tmp_path / "s.npy")], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["shape"] == [3, 64] and np.load(tmp_path / "s.npy").shape == (3, 64)
    bad = subprocess.run([*_console_script(), "train", "glow", "--out", str(tmp_path / "glow")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith("unimodel: error: unknown model 'glow'")
    helped = subprocess.run([*_console_script(), "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0 and "usage: unimodel" in helped.stdout and helped.stderr == ""


def test_train_eval_and_sample_on_mnist_style_files(tmp_path, capsys):
    """--data DIR trains on IDX files; eval and sample find them again from the checkpoint."""
    from test_data import _write_mnist

    mnist = tmp_path / "mnist"
    mnist.mkdir()
    _write_mnist(mnist, n_train=10_040, n_test=16, side=6, gz=True)
    run = tmp_path / "run"
    assert main(["train", "vae", "--data", str(mnist), "--hidden-dim", "8", "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--k", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 16
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (3, 36)
    assert main(["train", "vae", "--data", str(tmp_path), "--resume", "--out", str(run)]) == 2
