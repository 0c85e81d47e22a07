"""Data-parallel training: two CPU processes with the gloo backend.

These start real processes (``torch.multiprocessing.spawn`` and ``torchrun``),
so they take a few seconds each; they run by default because CI must show
that the distributed path works. All carry the ``distributed`` mark:
``-m "not distributed"`` skips them, ``-m distributed`` runs only them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from unimodel.checkpoint import load_checkpoint

pytestmark = pytest.mark.distributed

WORLD_SIZE = 2
DEADLINE_S = 120  # a hung process group must fail the test, not hang the suite


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    """One process: join the group through the environment, as torchrun would set it up, and train twice.

    ``out/real``: a tiny VAE, validated on real digits (each process draws its own noise).
    ``out/scripted``: validation scores that differ on purpose between the processes.
    """
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD_SIZE), RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from torch import distributed as dist

    from unimodel.data import digits_splits
    from unimodel.models.vae import VAE, VAEConfig
    from unimodel.recipes.vae import validation_score
    from unimodel.training import TrainConfig, fit

    splits = digits_splits()
    scripted = {0: iter([2.0, 1.0]), 1: iter([2.0, 3.0])}[rank]
    validators = {
        "real": lambda m: validation_score(m, splits.val.x[:100]),
        "scripted": lambda m: next(scripted),
    }
    try:
        for name, validate in validators.items():
            folder = Path(out) / name
            torch.manual_seed(rank)  # different initial weights on purpose: DDP must start both from rank 0's
            model = VAE(VAEConfig(hidden_dim=16))
            torch.save(model.state_dict(), folder / f"init-{rank}.pt")
            result = fit(
                model,
                (splits.train.x[:300], splits.train.y[:300]),
                TrainConfig(epochs=2, batch_size=32, device="cpu", seed=0, patience=0),
                validate=validate,
                checkpoint=folder / f"checkpoint-rank{rank}.pt",  # only rank 0 may write its own
                progress=False,
            )
            torch.save({"state": model.state_dict(), "best_epoch": result.best_epoch}, folder / f"final-{rank}.pt")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory) -> Path:
    """Run the two processes once for the tests of this module; the folder they wrote to."""
    out = tmp_path_factory.mktemp("ddp")
    for name in ("real", "scripted"):
        (out / name).mkdir()
    context = mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD_SIZE, join=False)
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not context.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"the {WORLD_SIZE} training processes did not finish in {DEADLINE_S} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return out


def _load(folder: Path, what: str) -> list:
    return [torch.load(folder / f"{what}-{rank}.pt", weights_only=True) for rank in range(WORLD_SIZE)]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_stay_in_sync_and_only_rank0_checkpoints(spawned):
    folder = spawned / "real"
    init, final = _load(folder, "init"), _load(folder, "final")
    assert not _same(init[0], init[1])  # they did start apart
    assert _same(final[0]["state"], final[1]["state"])  # and end identical
    assert not _same(final[0]["state"], init[0])  # after training
    assert final[0]["best_epoch"] == final[1]["best_epoch"]
    checkpoints = sorted(p.name for p in folder.iterdir() if "checkpoint" in p.name)
    assert checkpoints == ["checkpoint-rank0.pt"]  # and no temporary files left behind
    saved = load_checkpoint(folder / "checkpoint-rank0.pt")
    assert saved["loop"]["epoch"] == 2
    assert _same(saved["best_state"], final[0]["state"])


def test_processes_agree_on_the_best_epoch_when_their_validation_scores_differ(spawned):
    # Validation draws noise, and each process has its own: scores differ between ranks.
    # The loop must take one decision for all, or the ranks end with different weights
    # (and with patience, one would stop while the other waits for it forever).
    # Here rank 0 sees epoch 2 improve, rank 1 sees it get worse.
    final = _load(spawned / "scripted", "final")
    assert final[0]["best_epoch"] == final[1]["best_epoch"] == 2  # rank 0's scores decide
    assert _same(final[0]["state"], final[1]["state"])


def test_cli_under_torchrun(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "UNIMODEL_CACHE": str(tmp_path / "cache")}
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nproc_per_node", str(WORLD_SIZE), "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "unimodel.cli", "train", "vae", "--hidden-dim", "16", "--epochs", "1", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=DEADLINE_S)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = load_checkpoint(out / "checkpoint.pt")
    assert saved["meta"]["model"] == "vae" and saved["meta"]["config"]["hidden_dim"] == 16
    assert saved["loop"]["epoch"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]
    assert result.stdout.count('"epochs": 1') == WORLD_SIZE  # each process reports the run
