"""Figures and numbers of the taxonomy chapter: the four families on the same digits and the same budget.

The table is ``unimodel.experiments.taxonomy.measure_all`` with each model trained
through the cache (seed 0, 200 epochs each, the DDPM also with its chapter's
1000), so the GAN, PixelCNN and long-DDPM rows reuse their chapters' runs.
The same samples are also scored by density and coverage (Naeem et al. 2020,
"Reliable Fidelity and Diversity Metrics for Generative Models", arXiv
2002.09797), which count only balls around real samples and so are not
inflated by outlying samples as k-NN recall is; and the VAE is scored a
second time with its pixels drawn from p(x|z) instead of set to its mean.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from matplotlib import pyplot as plt

from unimodel import metrics
from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE, digits_splits
from unimodel.experiments import taxonomy
from unimodel.figures.registry import budget, compute_result, figure, result, trains
from unimodel.figures.style import PALETTE, show_images, tr
from unimodel.recipes import model_spec
from unimodel.runs import Run, RunSpec, cached_run

BUDGET = taxonomy.Budget(
    epochs=budget(full=200, quick=2),
    long_epochs=budget(full=1000, quick=20),
    steps=budget(full=1000, quick=100),
    samples=budget(full=1000, quick=500),
    importance_samples=budget(full=5000, quick=50),
)
COLORS = {"pixelcnn": PALETTE[0], "vae": PALETTE[1], "gan": PALETTE[3], "diffusion": PALETTE[2], "diffusion-long": PALETTE[4]}
DC_K = 5  # neighbours of the density / coverage balls: the k of the example in Naeem et al.'s README (clovaai/generative-evaluation-prdc)
OFFSETS = {"pixelcnn": (6, 4), "vae": (6, 4), "gan": (6, 6), "diffusion": (-8, -12), "diffusion-long": (-8, 6)}  # labels, in points, clear of each other


@trains
def runs() -> list[RunSpec]:
    return [RunSpec(row.model, row.config(BUDGET), taxonomy.train_config(row, BUDGET)) for row in taxonomy.ROWS.values()]


def rows(measured: dict) -> list[tuple[str, dict]]:
    """The measured rows in the table's order (the cache stores them sorted by name)."""
    return [(name, measured["rows"][name]) for name in taxonomy.ROWS]


def label(name: str, lang: str) -> str:
    """The row's name on a figure."""
    if name.startswith("diffusion"):
        epochs = BUDGET.long_epochs if name == "diffusion-long" else BUDGET.epochs
        return tr(lang, f"DDPM（{epochs} 轮）", f"DDPM ({epochs} epochs)")
    return {"pixelcnn": "PixelCNN", "vae": "VAE", "gan": "GAN"}[name]


# --8<-- [start:density-coverage]
def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = DC_K) -> dict[str, float]:
    """Density and coverage of ``fake`` against ``real`` samples, (n, d) each (Naeem et al. 2020).

    Only the real samples stand for balls (radius: the distance to their k-th nearest real
    neighbour). density: how many real balls hold a fake sample, per fake sample, divided by k
    (about 1 when the two sets come from one distribution); coverage: the share of real balls that
    hold at least one fake sample. A far-off fake sample, whose own ball would be huge, counts for
    nothing: it lies in no real ball.
    """
    if len(real) <= k:
        raise ValueError(f"need more than k = {k} real samples, got {len(real)}")
    real, fake = real.double().flatten(1), fake.double().flatten(1)
    radii = torch.cdist(real, real).kthvalue(k + 1, dim=1).values  # (N,) k + 1: the nearest is the sample itself
    inside = torch.cdist(fake, real) <= radii  # (M, N): fake j lies in the ball of real i
    return {"density": inside.sum().item() / (k * len(fake)), "coverage": inside.any(0).double().mean().item()}


# --8<-- [end:density-coverage]


@dataclasses.dataclass
class _Kept(Run):
    """A trained run that keeps what ``measure`` draws from it, so the same images can be scored again."""

    drawn: list = dataclasses.field(default_factory=list)

    @property
    def spec(self):
        spec = model_spec(self.name)

        def sample(model, n, generator):
            images = spec.sample(model, n, generator)
            self.drawn.append(images)
            return images

        return dataclasses.replace(spec, sample=sample)


def vae_pixel_samples(model, n: int, generator: torch.Generator) -> torch.Tensor:
    """z ~ N(0, I) (the same z as ``model.sample`` with the same generator), then every pixel drawn from p(x_i|z), in [0, 1], (n, 64)."""
    z = torch.randn(n, model.config.latent_dim, generator=generator)  # (n, D)
    with torch.no_grad():
        probs = model.level_log_probs(z).exp()  # (n, 64, L)
    levels = torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(n, -1)  # (n, 64) integers 0..L-1
    return levels.float() / (DIGIT_LEVELS - 1)


@result("taxonomy-table")
def table() -> dict:
    """The table of the chapter, with the comparisons its text quotes."""
    kept: dict[str, _Kept] = {}

    def train(name, model, config, train_config):
        run = cached_run(model, config, train_config)
        kept[name] = _Kept(run.name, run.model, run.result, run.data)
        return kept[name]

    measured = taxonomy.measure_all(BUDGET, train)
    rows = measured["rows"]
    splits = digits_splits()
    real = splits.test.x.float() / (DIGIT_LEVELS - 1)  # (447, 64), as measure() compares them
    for name, run in kept.items():
        rows[name].update(density_coverage(real, run.drawn[0][: len(real)].cpu()))  # the images precision and recall were computed on
    ceiling = splits.train.x[: len(real)].float() / (DIGIT_LEVELS - 1)
    measured["real"].update(density_coverage(real, ceiling))
    measured["dc_k"] = DC_K
    # the VAE again, every pixel drawn from p(x|z) rather than set to its mean (the table's VAE row)
    pixels = vae_pixel_samples(kept["vae"].model, BUDGET.samples, torch.Generator().manual_seed(BUDGET.seed))
    measured["vae_pixels"] = {
        **metrics.sample_scores(pixels.numpy()),
        **metrics.knn_precision_recall(real, pixels[: len(real)], BUDGET.k),
        **density_coverage(real, pixels[: len(real)]),
        "shown": pixels[:16].tolist(),
    }
    pixels = DIGIT_SIDE * DIGIT_SIDE
    measured["passes"] = {"pixelcnn": pixels, "vae": 1, "gan": 1, "diffusion": BUDGET.steps, "diffusion-long": BUDGET.steps}  # network passes per sample
    # the one-pass samplers take hundredths of a millisecond, too little to time precisely: the slower of the two is the yardstick
    one_pass = max(rows["vae"]["ms_per_image"], rows["gan"]["ms_per_image"])
    measured["one_pass_ms"] = one_pass
    measured["times_one_pass"] = {name: rows[name]["ms_per_image"] / one_pass for name in ("pixelcnn", "diffusion", "diffusion-long")}
    return measured


@figure("taxonomy/samples")
def samples(lang: str):
    """Sixteen samples of each model beside sixteen real test digits, and the VAE's with its pixels drawn from p(x|z)."""
    measured = compute_result("taxonomy-table")
    panels = [(tr(lang, "真实测试集数字", "real test digits"), measured["real"]["shown"])]
    panels += [(label(name, lang), row["shown"]) for name, row in rows(measured)]
    panels += [(tr(lang, "VAE，像素从 p(x|z) 采样", "VAE, pixels drawn from p(x|z)"), measured["vae_pixels"]["shown"])]
    fig, axes = plt.subplots(2, 4, figsize=(12.5, 4.2))
    for ax, (title, images) in zip(axes.flat, panels):
        show_images(ax, np.asarray(images), rows=2, title=title)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


@figure("taxonomy/precision-recall")
def precision_recall(lang: str):
    """Precision against recall per model, and real digits as the ceiling."""
    measured = compute_result("taxonomy-table")
    real = measured["real"]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, row in rows(measured):
        ax.scatter(row["recall"], row["precision"], s=60, color=COLORS[name], zorder=3)
        dx, dy = OFFSETS[name]
        ax.annotate(
            label(name, lang), (row["recall"], row["precision"]), textcoords="offset points", xytext=(dx, dy), fontsize=9, ha="left" if dx > 0 else "right"
        )
    ax.scatter(real["recall"], real["precision"], s=140, marker="*", color="black", zorder=3)
    ax.annotate(
        tr(lang, "真实数字\n（训练集对测试集）", "real digits\n(train vs test)"),
        (real["recall"], real["precision"]),
        textcoords="offset points",
        xytext=(8, 4),
        fontsize=9,
    )
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(tr(lang, "召回率：真实数字被样本覆盖的比例", "recall: share of real digits covered by samples"))
    ax.set_ylabel(tr(lang, "精确率：样本落在真实数字附近的比例", "precision: share of samples near real digits"))
    ax.set_title(tr(lang, f"k-NN 精确率与召回率（k = {BUDGET.k}，像素空间）", f"k-NN precision and recall (k = {BUDGET.k}, pixel space)"), fontsize=10)
    fig.tight_layout()
    return fig


@figure("taxonomy/sampling-time")
def sampling_time(lang: str):
    """The time one sample takes per model (log scale), with the network passes it needs."""
    measured = compute_result("taxonomy-table")
    names = list(taxonomy.ROWS)
    values = [measured["rows"][name]["ms_per_image"] for name in names]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.barh([label(name, lang) for name in names], values, color=[COLORS[name] for name in names])
    for i, name in enumerate(names):
        passes = measured["passes"][name]
        passes_en = "1 network pass" if passes == 1 else f"{passes} network passes"
        ax.text(values[i] * 1.15, i, tr(lang, f"{values[i]:.2f} 毫秒，{passes} 次网络前向", f"{values[i]:.2f} ms, {passes_en}"), va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 2, max(values) * 40)
    ax.invert_yaxis()
    ax.set_xlabel(
        tr(lang, f"每张样本的采样时间（毫秒，对数轴；一次采 {BUDGET.samples} 张）", f"sampling time per image (ms, log scale; {BUDGET.samples} drawn at once)")
    )
    fig.tight_layout()
    return fig
