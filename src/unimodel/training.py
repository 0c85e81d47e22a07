"""The one training loop every model in the package uses.

It knows nothing about any model. A model is an ``nn.Module`` whose
``forward(batch)`` returns ``(loss, metrics)``: the loss to minimise and a
dict of floats to log. The loop adds seeding, the device, minibatches,
early stopping on a validation score, a progress bar, atomic checkpoints,
``resume``, and data-parallel training over several processes.

A model can also be a game between players, each minimising its own loss
over its own parameters (a GAN's discriminator and generator). Such a
model names them in a ``players`` tuple, gives ``player_parameters(name)``,
and its ``forward(batch, player)`` returns that player's ``(loss, metrics)``.
The loop keeps one optimizer per player and, on every batch, lets each
player take one step in the order of ``players`` (``turns="batch"``), or
gives each player whole epochs in turn (``turns="epoch"``).

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
from torch import distributed as dist
from torch import nn
from tqdm import tqdm

from unimodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from unimodel.limits import check_seed
from unimodel.runtime import resolve_device, set_seed


@dataclass
class TrainConfig:
    epochs: int = 200  # upper bound on passes over the training set
    batch_size: int = 64  # examples per optimisation step in each process
    lr: float = 1e-3  # learning rate
    optimizer: str = "adamax"  # "adamax", "adam" or "adamw"
    beta1: float = 0.9  # decay of the optimizer's running mean of gradients (Adam's beta1)
    schedule: str = "constant"  # learning rate over the epochs: "constant", or "cosine" (decays to 0 at the last epoch)
    turns: str = "batch"  # models with several players: each steps on every batch ("batch"), or each gets whole epochs in turn ("epoch")
    patience: int = 20  # stop after this many epochs without a better validation score; 0 never stops early
    seed: int = 0  # seeds shuffling and noise (seed the initial weights with runtime.set_seed before building the model)
    device: str = "auto"  # "auto", "cpu" or "cuda"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        check_seed(self.seed)
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZERS)}, got {self.optimizer!r}")
        if not 0 <= self.beta1 < 1:
            raise ValueError(f"beta1 must be in [0, 1), got {self.beta1}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.turns not in ("batch", "epoch"):
            raise ValueError(f"turns must be 'batch' or 'epoch', got {self.turns!r}")

    def lr_at(self, progress: float) -> float:
        """The learning rate when ``progress`` (0 at the first step, 1 at the end) of training is done."""
        if self.schedule == "constant":
            return self.lr
        return self.lr * 0.5 * (1 + math.cos(math.pi * progress))


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


def _active_players(optimizers: dict, players: Sequence[str] | None, epoch: int, turns: str) -> dict:
    """The optimizers that step during ``epoch``: all of them, or with turns="epoch" one player's per epoch."""
    if not players or turns == "batch":
        return optimizers
    player = players[(epoch - 1) % len(players)]
    return {player: optimizers[player]}


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
    and config); ``resume`` continues from it; the checkpoint's ``loop["segments"]``
    records the settings each call trained with and the epoch it began at. Each
    callback is called after every epoch with (epoch, record, model).
    """
    proc = _join_process_group(config.device)
    set_seed(config.seed + proc.rank)
    model.to(proc.device)
    players = getattr(model, "players", None)
    make_optimizer = _OPTIMIZERS[config.optimizer]
    optimizers = (
        {player: make_optimizer(model.player_parameters(player), lr=config.lr, betas=(config.beta1, 0.999)) for player in players}
        if players
        else {"model": make_optimizer(model.parameters(), lr=config.lr, betas=(config.beta1, 0.999))}
    )
    # without validation there is no best score: NaN, in the checkpoint as in the result, so a loaded run reports what training did
    best_val = math.inf if validate is not None else math.nan
    state = {"epoch": 0, "history": [], "best_val": best_val, "best_epoch": 0, "bad_epochs": 0, "seconds": 0.0, "stopped_early": False, "segments": []}
    best_weights = copy.deepcopy(model.state_dict())
    if resume and checkpoint is not None and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint)
        model.load_state_dict(saved["model_state"])
        if set(saved.get("optimizer_states", ())) != set(optimizers):
            raise CheckpointError(f"{checkpoint} holds optimizers for {sorted(saved.get('optimizer_states', ()))}, this model has {sorted(optimizers)}")
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(saved["optimizer_states"][name])  # the lr is set again at every step
        best_weights = saved["best_state"]
        torch.set_rng_state(saved["rng_state"])
        state = saved["loop"]
        state.setdefault("segments", [{"from_epoch": 1, "train_config": saved["train_config"]}])  # a checkpoint from before segments
        # judged by this call's patience: a run stopped early goes on when resumed with more patience (or 0)
        state["stopped_early"] = bool(config.patience and state["bad_epochs"] >= config.patience)
    if not state["segments"] or state["segments"][-1]["train_config"] != asdict(config):  # each change of settings, and where it began
        state["segments"].append({"from_epoch": state["epoch"] + 1, "train_config": asdict(config)})

    # a player's step leaves the other players' parameters without gradients
    trainer = nn.parallel.DistributedDataParallel(model, find_unused_parameters=bool(players)) if proc.world_size > 1 else model
    n = len(train_data[0])
    steps_per_epoch = math.ceil(math.ceil(n / proc.world_size) / config.batch_size)
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
        active = _active_players(optimizers, players, epoch, config.turns)
        # --8<-- [start:train-step]
        for step, start in enumerate(range(0, len(shard), config.batch_size)):
            index = shard[start : start + config.batch_size]
            batch = tuple(t[index].to(proc.device) for t in train_data)
            lr = config.lr_at(((epoch - 1) * steps_per_epoch + step) / (config.epochs * steps_per_epoch))
            for player, optimizer in active.items():  # a GAN: the discriminator, then the generator
                loss, metrics = trainer(batch, player) if players else trainer(batch)  # the model computes its own loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # under DDP, gradients are averaged across processes here
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.step()
                loss_name = f"{player}_loss" if players else "loss"
                for name, value in {loss_name: loss.item(), **metrics}.items():  # epoch means, weighted by batch size
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
                    "optimizer_states": {name: optimizer.state_dict() for name, optimizer in optimizers.items()},
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
        best_val=state["best_val"],
        seconds=state["seconds"],
        stopped_early=state["stopped_early"],
    )
