"""Training runs: a model, its settings and its checkpoint, in one folder.

The CLI trains into a folder the user names; the site trains into the cache,
under a key that hashes the model's code, the training loop and the
settings, so a figure never waits for a model it has trained before.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from torch import nn

from unimodel import cache
from unimodel.checkpoint import CheckpointError, load_checkpoint, owned_folder
from unimodel.data import Splits, load_splits
from unimodel.recipes import MODELS, ModelSpec, model_spec
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, TrainResult, fit

CHECKPOINT = "checkpoint.pt"
log = logging.getLogger(__name__)


@dataclass
class Run:
    name: str  # the model's name in unimodel.recipes.MODELS
    model: nn.Module  # holding the best validation weights
    result: TrainResult
    data: str = "digits"  # what it was trained on: a name in data.DATASETS or a folder of IDX files

    @property
    def spec(self) -> ModelSpec:
        return model_spec(self.name)


def train_run(
    name: str,
    model_config: dict,
    train_config: TrainConfig,
    out: str | Path,
    *,
    data: str = "digits",
    resume: bool = False,
    progress: bool = True,
    splits: Splits | None = None,
    record: Callable[[nn.Module], dict] | None = None,
    stage: Run | None = None,
) -> Run:
    """Train model ``name`` on ``data`` (see ``load_splits``; ``splits`` if already loaded), writing ``out/checkpoint.pt`` after every epoch.

    ``record(model)``, if given, is called after every epoch and what it returns is kept in that epoch's history.
    ``stage``, the trained run of the model's first stage (``ModelSpec.stage``), is taken instead of training that stage here.
    """
    spec = model_spec(name)
    splits = splits or load_splits(data)
    writer = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes the checkpoint, so only it owns the folder
    with owned_folder(out) if writer else contextlib.nullcontext(Path(out)):  # one writer per folder: a second is refused
        checkpoint = Path(out) / CHECKPOINT
        if writer and checkpoint.exists() and not resume:
            raise CheckpointError(f"{checkpoint} exists; resume it or train into another folder")
        set_seed(train_config.seed)  # the initial weights depend on the seed alone
        model = spec.model_cls(spec.config_cls(**model_config))
        if spec.prepare and not checkpoint.exists():  # resuming loads the prepared stage with the rest of the weights
            spec.prepare(model, splits, train_config, progress, trained=stage.model if stage else None)
        result = fit(
            model,
            (splits.train.x, splits.train.y),
            train_config,
            validate=(lambda m: spec.validate(m, splits)) if spec.validate else None,
            checkpoint=checkpoint,
            resume=resume,
            meta={"model": name, "config": dict(model_config), "data": data},
            progress=progress,
            callbacks=[lambda epoch, entry, m: entry.update(record(m))] if record else (),
        )
    return Run(name, model, result, data)


def load_run(folder: str | Path) -> Run:
    """The best-validation model of a finished or interrupted run."""
    saved = load_checkpoint(Path(folder) / CHECKPOINT)
    try:
        name, config = saved["meta"]["model"], saved["meta"]["config"]
        spec = model_spec(name)
        model = spec.model_cls(spec.config_cls(**config))
        model.load_state_dict(saved["best_state"])
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{Path(folder) / CHECKPOINT} does not match any known model ({error})") from None
    model.eval()
    loop = saved["loop"]
    result = TrainResult(loop["history"], loop["best_epoch"], loop["best_val"], loop["seconds"], loop["stopped_early"])
    return Run(name, model, result, saved["meta"].get("data", "digits"))


def site_device() -> str:
    """Where the site trains its runs: ``$UNIMODEL_DEVICE`` ("auto", the default: CUDA when PyTorch sees a GPU; "cpu"; "cuda")."""
    return os.environ.get("UNIMODEL_DEVICE", "auto")


@dataclass(frozen=True, eq=False)
class RunSpec:
    """A run the site trains into the cache, as data: a build can list, schedule and share runs before training any.

    ``train_size`` keeps only the first examples of the training split (validation and test stay whole).
    The key hashes the code of the model's recipe (which imports its network), of this module and of ``record``, the config with its defaults
    filled in (``{}`` and the defaults written out are the same run), the training settings but the device
    (a run trained on a GPU serves a CPU build), the data set, ``record`` and ``train_size``.
    """

    name: str  # the model's name in unimodel.recipes.MODELS
    model_config: dict
    train_config: TrainConfig
    data: str = "digits"
    record: Callable[[nn.Module], dict] | None = None  # called after every epoch, kept in the history
    train_size: int | None = None

    @property
    def key(self) -> str:
        spec = model_spec(self.name)
        modules = (MODELS[self.name], __name__, *([self.record.__module__] if self.record else []))
        config = asdict(spec.config_cls(**self.model_config))
        settings = {k: v for k, v in asdict(self.train_config).items() if k != "device"}
        record = self.record and self.record.__qualname__
        return cache.artifact_key(modules, self.name, config, settings, self.data, record, self.train_size)

    @property
    def folder(self) -> Path:
        return cache.cache_dir() / "runs" / self.key

    @property
    def stage(self) -> RunSpec | None:
        """The run of the model's first stage (a unified model's tokenizer), on the same data: trained once for every run that shares it."""
        spec = model_spec(self.name)
        if spec.stage is None:
            return None
        name, config, train = spec.stage(spec.config_cls(**self.model_config), self.train_config)
        return RunSpec(name, config, train, self.data, train_size=self.train_size)

    def trained(self) -> bool:
        return (self.folder / "done").exists()

    def describe(self) -> str:
        """A short name for progress lines, the same in every build: the model and what differs from its defaults."""
        spec = model_spec(self.name)
        try:
            defaults = asdict(spec.config_cls())
        except TypeError:  # a config with required fields
            defaults = {}
        changed = {k: v for k, v in asdict(spec.config_cls(**self.model_config)).items() if defaults.get(k, object()) != v}
        train = {**TrainConfig().__dict__, **spec.train_defaults(self.data)}
        changed |= {k: v for k, v in asdict(self.train_config).items() if k not in ("seed", "device") and train.get(k) != v}
        extra = [
            f"seed {self.train_config.seed}",
            *([self.data] if self.data != "digits" else []),
            *([f"{self.train_size} digits"] if self.train_size else []),
            *([f"recording {self.record.__name__}"] if self.record else []),
        ]
        return " ".join([self.name, *(f"{k}={v}" for k, v in changed.items()), f"({', '.join(extra)})"])

    def load(self) -> Run:
        """The trained run: loaded from the cache, trained into it first if it is not there (by one process only)."""
        folder, done = self.folder, self.folder / "done"
        if not done.exists():
            stage = self.stage.load() if self.stage else None
            with cache.exclusive(folder):
                if not done.exists():  # another process may have trained it while this one waited
                    log.info("unimodel: training %s (cache key %s)", self.describe(), folder.name)
                    splits = load_splits(self.data)
                    splits = splits.first(self.train_size) if self.train_size else splits
                    train = replace(self.train_config, device=site_device())
                    train_run(
                        self.name, self.model_config, train, folder, data=self.data, resume=True, progress=False, splits=splits, record=self.record, stage=stage
                    )
                    done.touch()
        return load_run(folder)


def cached_run(
    name: str,
    model_config: dict,
    train_config: TrainConfig,
    data: str = "digits",
    record: Callable[[nn.Module], dict] | None = None,
    train_size: int | None = None,
) -> Run:
    """Train once per (code, settings, data set, ``record``) into the cache; later calls load the checkpoint (see ``RunSpec``)."""
    return RunSpec(name, model_config, train_config, data, record, train_size).load()
