"""The one training loop every model in the package uses.

It knows nothing about any model. A model is an ``nn.Module`` whose
``forward(batch)`` returns ``(loss, metrics)``: the loss to minimise and a
dict of floats to log. The loop adds seeding, the device, minibatches,
early stopping on a validation score, a progress bar, atomic checkpoints,
``resume``, and data-parallel training over several processes.

Distributed: started by ``torchrun --nproc_per_node N`` (or across nodes),
the environment carries ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; the loop then
joins a process group (gloo on CPU, NCCL on CUDA), wraps the model in
``DistributedDataParallel`` and gives each process its shard of every epoch.
Each process uses ``batch_size`` examples per step, so the global batch is
``batch_size * WORLD_SIZE``. Only rank 0 writes checkpoints and draws the bar.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch import distributed as dist
from tqdm import tqdm

from unimodel.checkpoint import load_checkpoint, save_checkpoint
from unimodel.runtime import resolve_device, set_seed


@dataclass
class TrainConfig:
    epochs: int = 200  # upper bound on passes over the training set
    batch_size: int = 64  # examples per optimisation step in each process
    lr: float = 1e-3  # learning rate
    optimizer: str = "adamax"  # "adamax", "adam" or "adamw"
    patience: int = 20  # stop after this many epochs without a better validation score; 0 never stops early
    seed: int = 0  # seeds shuffling and noise (seed the initial weights with runtime.set_seed before building the model)
    device: str = "auto"  # "auto", "cpu" or "cuda"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZERS)}, got {self.optimizer!r}")


_OPTIMIZERS = {"adamax": torch.optim.Adamax, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


@dataclass
class TrainResult:
    history: list[dict[str, float]]  # one record per epoch: train metrics, "val", "seconds"
    best_epoch: int  # epoch whose weights the model holds at the end (the best validation score)
    best_val: float  # that score (lower is better); nan without validation
    seconds: float  # wall time of training, summed over resumed runs
    stopped_early: bool


@dataclass
class _Process:
    """Where this process stands in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _join_process_group(device_name: str) -> _Process:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return _Process(device=resolve_device(device_name))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Process(rank=rank, world_size=world_size, device=device)


def _epoch_shard(n: int, epoch: int, seed: int, proc: _Process) -> torch.Tensor:
    """This process's indices for one epoch: one shuffle shared by all processes, padded to equal shards."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    padded = math.ceil(n / proc.world_size) * proc.world_size
    order = torch.cat([order, order[: padded - n]])
    return order[proc.rank :: proc.world_size]


def _from_rank0(value: float, proc: _Process) -> float:
    """Rank 0's ``value`` in every process, so that all take the same early-stopping and best-weights decisions.

    Each process draws its own noise, so a validation score differs between them.
    """
    if proc.world_size == 1:
        return value
    shared = torch.tensor([value], dtype=torch.float64, device=proc.device)
    dist.broadcast(shared, src=0)
    return shared.item()


def fit(
    model: nn.Module,
    train_data: Sequence[torch.Tensor],
    config: TrainConfig,
    *,
    validate: Callable[[nn.Module], float] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    meta: dict | None = None,
    progress: bool = True,
    callbacks: Sequence[Callable[[int, dict[str, float], nn.Module], None]] = (),
) -> TrainResult:
    """Train ``model`` on the tensors ``train_data`` (sliced together along dim 0).

    validate(model) -> score, lower is better, drives early stopping and
    which weights the model ends with. ``checkpoint`` is written atomically
    after every epoch (with ``meta`` stored verbatim, e.g. the model's name
    and config); ``resume`` continues from it. Each callback is called after
    every epoch with (epoch, record, model).
    """
    proc = _join_process_group(config.device)
    set_seed(config.seed + proc.rank)
    model.to(proc.device)
    optimizer = _OPTIMIZERS[config.optimizer](model.parameters(), lr=config.lr)
    state = {"epoch": 0, "history": [], "best_val": math.inf, "best_epoch": 0, "bad_epochs": 0, "seconds": 0.0, "stopped_early": False}
    best_weights = copy.deepcopy(model.state_dict())
    if resume and checkpoint is not None and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint)
        model.load_state_dict(saved["model_state"])
        optimizer.load_state_dict(saved["optimizer_state"])
        for group in optimizer.param_groups:  # load_state_dict brings back the saved lr; the config's wins
            group["lr"] = config.lr
        best_weights = saved["best_state"]
        torch.set_rng_state(saved["rng_state"])
        state = saved["loop"]
        # judged by this call's patience: a run stopped early goes on when resumed with more patience (or 0)
        state["stopped_early"] = bool(config.patience and state["bad_epochs"] >= config.patience)

    trainer = nn.parallel.DistributedDataParallel(model) if proc.world_size > 1 else model
    n = len(train_data[0])
    epochs = range(state["epoch"] + 1, config.epochs + 1)
    # disable=None: a bar on a terminal, none in a log file or pipe
    bar = tqdm(epochs, desc="train", unit="epoch", disable=None if progress and proc.is_main else True, dynamic_ncols=True)
    for epoch in bar:
        if state["stopped_early"]:
            break
        started = time.perf_counter()
        model.train()
        sums: dict[str, float] = {}
        shard = _epoch_shard(n, epoch, config.seed, proc)
        # --8<-- [start:train-step]
        for start in range(0, len(shard), config.batch_size):
            index = shard[start : start + config.batch_size]
            batch = tuple(t[index].to(proc.device) for t in train_data)
            loss, metrics = trainer(batch)  # the model computes its own loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # under DDP, gradients are averaged across processes here
            optimizer.step()
            for name, value in {"loss": loss.item(), **metrics}.items():  # epoch means, weighted by batch size
                sums[name] = sums.get(name, 0.0) + value * len(index)
        # --8<-- [end:train-step]
        record = {name: total / len(shard) for name, total in sums.items()}
        record["epoch"] = epoch
        if validate is not None:
            model.eval()
            with torch.no_grad():
                record["val"] = _from_rank0(float(validate(model)), proc)
            if record["val"] < state["best_val"]:
                state.update(best_val=record["val"], best_epoch=epoch, bad_epochs=0)
                best_weights = copy.deepcopy(model.state_dict())
            else:
                state["bad_epochs"] += 1
        else:
            state["best_epoch"] = epoch
            best_weights = copy.deepcopy(model.state_dict())
        state["seconds"] += time.perf_counter() - started
        record["seconds"] = state["seconds"]
        state["history"].append(record)
        state["epoch"] = epoch
        state["stopped_early"] = bool(config.patience and state["bad_epochs"] >= config.patience)
        bar.set_postfix({k: f"{v:.2f}" for k, v in record.items() if k in ("loss", "val")})
        for callback in callbacks:
            callback(epoch, record, model)
        if checkpoint is not None and proc.is_main:
            save_checkpoint(
                checkpoint,
                {
                    "meta": meta or {},
                    "train_config": asdict(config),
                    "model_state": model.state_dict(),
                    "best_state": best_weights,
                    "optimizer_state": optimizer.state_dict(),
                    "rng_state": torch.get_rng_state(),
                    "loop": state,
                },
            )
    bar.close()
    model.load_state_dict(best_weights)
    model.eval()
    return TrainResult(
        history=state["history"],
        best_epoch=state["best_epoch"],
        best_val=state["best_val"] if validate is not None else math.nan,
        seconds=state["seconds"],
        stopped_early=state["stopped_early"],
    )
