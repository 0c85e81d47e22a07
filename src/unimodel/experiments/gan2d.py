"""The 2-D mode-collapse benchmark: the GAN chapter's configurations, one seed's run, the summary.

``unimodel bench gan2d --dataset ring --seeds 0 1 2 3 4`` trains each seed
from scratch and prints one JSON object per seed, then the summary (mean and
standard error over the seeds). The site's table comes from the same
configurations, trained through the cache.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from unimodel.data import load_splits
from unimodel.mixtures import MIXTURES
from unimodel.runs import Run, train_run
from unimodel.training import TrainConfig

DATASETS = tuple(MIXTURES)
# --8<-- [start:variants]
R1_WEIGHT = {"ring": 0.01, "grid": 0.1}  # gamma, tuned per mixture: its modes have different widths


def variant_changes(variant: str, dataset: str) -> dict:
    """How a variant's GANConfig differs from the defaults on ``dataset``."""
    return {
        "gan": {},  # a plain GAN with the non-saturating loss
        "r1": {"r1": R1_WEIGHT[dataset], "rejection": True},  # the recommendation: penalise D's gradient on real data, reject unlikely draws
        "pacgan": {"pack": 4},  # PacGAN4: the discriminator judges packs of 4 samples
    }[variant]


# --8<-- [end:variants]


VARIANTS = ("r1", "gan", "pacgan")
METRICS = ("modes", "high_quality", "jsd", "seconds")
DIRECT = ("direct_modes", "direct_high_quality", "direct_jsd")  # a run with rejection sampling: the same metrics of G's own draws
SNAPSHOT_POINTS = 400


def snapshot(model: torch.nn.Module) -> dict:
    """What the site's 2-D runs keep after every epoch: a few of G's own draws (no rejection), always from the same noise."""
    return {"points": model.sample(SNAPSHOT_POINTS, torch.Generator().manual_seed(0), rejection=False).tolist()}


def model_config(variant: str, dataset: str, **changes) -> dict:
    """The GANConfig of a variant for 2-D points, as a dict."""
    from unimodel.models.gan import GANConfig

    return asdict(GANConfig(data_dim=2, **{**variant_changes(variant, dataset), **changes}))


def train_config(dataset: str, seed: int, **changes) -> TrainConfig:
    from unimodel.recipes.gan import train_defaults

    return TrainConfig(**{**train_defaults(dataset), "seed": seed, "device": "cpu", **changes})


def score(run: Run, seed: int) -> dict:
    """PacGAN's metrics of 2500 samples drawn with ``seed``, and the training time.

    A run with rejection sampling is also scored on G's own draws (the DIRECT metrics).
    """
    splits = load_splits(run.data)
    scores = {**run.spec.evaluate(run.model, splits, seed=seed), "seconds": run.result.seconds}
    if run.model.config.rejection:
        direct = run.spec.evaluate(run.model, splits, seed=seed, rejection=False)
        scores.update({name: direct[name.removeprefix("direct_")] for name in DIRECT})
    return scores


def run_folder(out: Path, dataset: str, variant: str, seed: int) -> Path:
    """Where ``--out`` keeps one seed's checkpoint."""
    return out / f"{dataset}-{variant}-seed{seed}"


def run_seed(dataset: str, variant: str, seed: int, out: Path | None = None, progress: bool = True) -> dict:
    """Train one seed from scratch (into ``out``, or a temporary folder) and score it."""
    with tempfile.TemporaryDirectory(prefix="unimodel-gan2d-") as tmp:
        folder = run_folder(out, dataset, variant, seed) if out else Path(tmp)
        run = train_run("gan", model_config(variant, dataset), train_config(dataset, seed), folder, data=dataset, progress=progress)
        return {"dataset": dataset, "variant": variant, "seed": seed, **score(run, seed)}


def summarize(rows: list[dict]) -> dict:
    """Mean and standard error (std / sqrt(n), 0 for one seed) of each metric over the seeds."""
    summary: dict = {"seeds": len(rows)}
    for name in (*METRICS, *(DIRECT if DIRECT[0] in rows[0] else ())):
        values = torch.tensor([float(row[name]) for row in rows], dtype=torch.float64)
        error = values.std().item() / math.sqrt(len(rows)) if len(rows) > 1 else 0.0
        summary[name] = {"mean": values.mean().item(), "stderr": error}
    summary["all_modes_every_seed"] = all(row["modes"] == len(MIXTURES[rows[0]["dataset"]].means) for row in rows)
    return summary


def main(dataset: str, variant: str, seeds: list[int], out: Path | None = None) -> dict:
    rows = []
    for seed in seeds:
        row = run_seed(dataset, variant, seed, out)
        print(json.dumps({k: v for k, v in row.items() if k != "counts"}), flush=True)
        rows.append(row)
    summary = {"dataset": dataset, "variant": variant, "summary": summarize(rows)}
    print(json.dumps(summary), flush=True)
    s = summary["summary"]
    print(
        f"{dataset} {variant}: {s['modes']['mean']:.2f} ± {s['modes']['stderr']:.2f} modes, "
        f"{100 * s['high_quality']['mean']:.1f} ± {100 * s['high_quality']['stderr']:.1f}% high quality, "
        f"JSD {s['jsd']['mean']:.4f}, {s['seconds']['mean']:.0f} s per seed"
        + (
            f" (without rejection: {s['direct_modes']['mean']:.2f} modes, {100 * s['direct_high_quality']['mean']:.1f}% high quality)"
            if "direct_modes" in s
            else ""
        ),
        file=sys.stderr,
    )
    return summary
