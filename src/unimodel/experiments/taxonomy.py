"""The notes' taxonomy of generative models, measured on the same digits with the same budget.

The notes sort generative models into explicit ones, whose likelihood is
exact (PixelCNN) or approximated (VAE), and implicit ones (GAN, diffusion).
``measure_all`` trains the four implementations on the digits protocol's
1000 training images for the same number of passes (``Budget.epochs``),
each with its chapter's optimizer, and measures for each: what it can say
about log p(x) on the test split, how long one sample takes, how the judge
reads 1000 samples, k-NN precision and recall against the test digits, and
the training time. The real test digits are measured the same way, as the
ceiling. ``unimodel bench taxonomy`` prints the table as JSON; the taxonomy
chapter's table is the same function, trained through the cache.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from unimodel import metrics
from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE, Splits, digits_splits
from unimodel.limits import MAX_IMPORTANCE_SAMPLES, MAX_SAMPLES, MAX_STEPS, check_count, check_seed
from unimodel.recipes import model_spec
from unimodel.runs import Run, train_run
from unimodel.training import TrainConfig


@dataclass(frozen=True)
class Budget:
    epochs: int = 200  # passes over the training digits, the same for every model
    long_epochs: int = 1000  # the diffusion chapter's own budget, for the extra DDPM row
    steps: int = 1000  # T of the DDPM (the paper's 1000)
    samples: int = 1000  # images drawn from each model for the judge and the timing
    importance_samples: int = 5000  # K of the VAE's importance-sampled NLL
    k: int = 3  # neighbours of the precision / recall balls (Kynkäänniemi et al. use 3)
    seed: int = 0  # initial weights, data order, sampling and estimator noise

    def __post_init__(self) -> None:
        for name in ("epochs", "long_epochs", "k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        check_count(self.steps, "steps", MAX_STEPS)
        check_count(self.samples, "samples", MAX_SAMPLES)
        check_count(self.importance_samples, "importance_samples", MAX_IMPORTANCE_SAMPLES)
        check_seed(self.seed)


@dataclass(frozen=True)
class Row:
    model: str  # its name in unimodel.recipes.MODELS
    notes: str  # where the notes file it: "explicit-exact", "explicit-approximate" or "implicit"
    likelihood: str  # what the model can say about log p(x): "exact", "bound" or "none"
    config: Callable[[Budget], dict]  # the model's config under a budget
    epochs: Callable[[Budget], int] = lambda budget: budget.epochs


def _diffusion_config(budget: Budget) -> dict:
    return {"data_dim": DIGIT_SIDE * DIGIT_SIDE, "steps": budget.steps}


# --8<-- [start:rows]
ROWS = {
    "pixelcnn": Row("pixelcnn", "explicit-exact", "exact", lambda budget: {}),
    "vae": Row("vae", "explicit-approximate", "bound", lambda budget: {}),
    "gan": Row("gan", "implicit", "none", lambda budget: {"data_dim": DIGIT_SIDE * DIGIT_SIDE}),
    "diffusion": Row("diffusion", "implicit", "bound", _diffusion_config),
    # the same DDPM with the diffusion chapter's own budget: how much more diffusion asks for
    "diffusion-long": Row("diffusion", "implicit", "bound", _diffusion_config, lambda budget: budget.long_epochs),
}


def nll_on_test(run: Run, splits: Splits, budget: Budget) -> float | None:
    """Nats per test image: exact (PixelCNN), an upper bound (VAE: importance-sampled; DDPM: the variational bound) or None (GAN)."""
    generator = torch.Generator().manual_seed(budget.seed)
    if run.name == "pixelcnn":
        return run.spec.evaluate(run.model, splits)["nll"]
    if run.name == "vae":
        return run.spec.evaluate(run.model, splits, k=budget.importance_samples, seed=budget.seed)["nll_is"]
    if run.name == "diffusion":
        return run.model.nll_bound(splits.test.x, generator)["total"].mean().item()
    return None  # a GAN defines no density: there is nothing to evaluate


# --8<-- [end:rows]


def train_config(row: Row, budget: Budget) -> TrainConfig:
    """The model's own optimizer settings on the digits, for the budget's number of epochs."""
    defaults = model_spec(row.model).train_defaults("digits")
    return TrainConfig(**{**defaults, "epochs": row.epochs(budget), "seed": budget.seed, "device": "cpu"})


def _images(split) -> torch.Tensor:
    return split.x.float() / (DIGIT_LEVELS - 1)  # (n, 64) in [0, 1], as the models draw them


def measure(name: str, run: Run, splits: Splits, budget: Budget) -> dict:
    """One row of the table for a trained ``run`` (the row's name is its key in the table)."""
    row = ROWS[name]
    real = _images(splits.test)
    started = time.perf_counter()
    with torch.no_grad():
        images = run.spec.sample(run.model, budget.samples, torch.Generator().manual_seed(budget.seed)).cpu()  # (n, 64)
    seconds = time.perf_counter() - started
    return {
        "model": row.model,
        "notes": row.notes,
        "likelihood": row.likelihood,
        "nll": nll_on_test(run, splits, budget),
        "ms_per_image": 1000 * seconds / budget.samples,
        **metrics.sample_scores(images.numpy()),
        **metrics.knn_precision_recall(real, images[: len(real)], budget.k),
        "train_seconds": run.result.seconds,
        "epochs": len(run.result.history),
        "shown": images[:16].tolist(),  # a few samples for the chapter's figure
    }


def real_digits(splits: Splits, budget: Budget) -> dict:
    """The ceiling: the judge on real test digits, and training digits against test digits as if they were samples."""
    real, train = _images(splits.test), _images(splits.train)
    return {
        "judge_accuracy": metrics.judge_accuracy_on_test(),
        **metrics.sample_scores(real.numpy()),
        **metrics.knn_precision_recall(real, train[: len(real)], budget.k),
        "shown": real[:16].tolist(),
    }


def measure_all(budget: Budget, train: Callable[[str, str, dict, TrainConfig], Run], say: Callable[[str], None] = lambda _: None) -> dict:
    """The whole table: every row of ``ROWS``, trained by ``train(row_name, model, config, train_config)``, and the real digits."""
    for row in ROWS.values():  # a bad budget (too few DDPM steps, say) fails now, not after minutes of training
        model_spec(row.model).config_cls(**row.config(budget))
    splits = digits_splits()
    rows = {}
    for name, row in ROWS.items():
        say(f"taxonomy: training {name} ({row.epochs(budget)} epochs)")
        run = train(name, row.model, row.config(budget), train_config(row, budget))
        say(f"taxonomy: measuring {name}")
        rows[name] = measure(name, run, splits, budget)
    return {"budget": asdict(budget), "threads": torch.get_num_threads(), "rows": rows, "real": real_digits(splits, budget)}


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def readable(table: dict) -> str:
    """The table as aligned text, for a terminal."""
    lines = [f"{'model':<15}{'likelihood':<11}{'NLL':>8}{'ms/img':>9}{'judge':>7}{'classes':>8}{'prec':>6}{'recall':>7}{'train s':>9}"]
    for name, r in table["rows"].items():
        lines.append(
            f"{name:<15}{r['likelihood']:<11}{_fmt(r['nll'], '8.1f')}{r['ms_per_image']:9.2f}{r['balanced_confidence']:7.2f}"
            f"{r['classes']:8d}{r['precision']:6.2f}{r['recall']:7.2f}{r['train_seconds']:9.0f}"
        )
    real = table["real"]
    lines.append(
        f"{'real digits':<15}{'':<11}{'-':>8}{'-':>9}{real['balanced_confidence']:7.2f}{real['classes']:8d}{real['precision']:6.2f}{real['recall']:7.2f}{'-':>9}"
    )
    return "\n".join(lines)


def run_folder(out: Path, row: str, epochs: int) -> Path:
    return out / f"{row}-{epochs}epochs"


def run_folders(budget: Budget, out: Path) -> list[Path]:
    """Where ``--out`` keeps each row's checkpoint."""
    return [run_folder(out, name, row.epochs(budget)) for name, row in ROWS.items()]


def main(budget: Budget, out: Path | None = None) -> dict:
    """Train every model from scratch (into ``out``/<row>, or a temporary folder), print the table as JSON."""
    with tempfile.TemporaryDirectory(prefix="unimodel-taxonomy-") as tmp:
        folder = out or Path(tmp)

        def train(row: str, model: str, config: dict, train_config: TrainConfig) -> Run:
            return train_run(model, config, train_config, run_folder(folder, row, train_config.epochs))

        def say(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

        table = measure_all(budget, train, say)
    for row in table["rows"].values():
        del row["shown"]
    del table["real"]["shown"]
    print(json.dumps(table, indent=1), flush=True)
    print(readable(table), file=sys.stderr, flush=True)
    return table
