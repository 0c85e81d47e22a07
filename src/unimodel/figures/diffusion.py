"""Figures and numbers of the diffusion chapter.

Every run uses the paper's schedule (T = 1000, beta linear from 1e-4 to
0.02; 100 steps under the quick profile) and the settings of
``models.diffusion.train_defaults``: Adam with a cosine decay, batches of 500
points for 20 epochs on the 2-D mixtures (4000 steps), batches of 100 digits
for 1000 epochs (10,000 steps), seed 0. The sampling chains are run once per
change of code and kept as results; the figures draw from those.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch
from matplotlib import pyplot as plt

from unimodel import metrics
from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE, digits_splits
from unimodel.figures.registry import budget, compute_result, figure, result, trains
from unimodel.figures.style import PALETTE, show_images, show_points, tr
from unimodel.mixtures import EVAL_SIZE, MIXTURES, mode_metrics
from unimodel.models.diffusion import Diffusion, DiffusionConfig, train_defaults
from unimodel.runs import Run, RunSpec
from unimodel.training import TrainConfig

STEPS = budget(full=1000, quick=100)  # T
SEED = 0
# the steps t at which the chains are kept for the figures, from x_T down to x_1
KEEP = tuple(sorted({max(1, round(STEPS * f)) for f in (1, 0.75, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.001)}, reverse=True))
SHOWN_POINTS = 600  # points per panel in the trajectory figure
SHOWN_IMAGES = 64


def _paper_schedule() -> Diffusion:
    """An untrained digits model with the paper's schedule (T = 1000): its buffers, q_sample and the bound's weights."""
    return Diffusion(DiffusionConfig(data_dim=DIGIT_SIDE * DIGIT_SIDE, steps=1000))


def spec(data: str) -> RunSpec:
    """The chapter's model of ``data`` ("ring", "grid" or "digits")."""
    defaults = train_defaults(data)
    epochs = budget(full=defaults["epochs"], quick=1 if data in MIXTURES else 20)
    train = TrainConfig(**{**defaults, "epochs": epochs, "seed": SEED, "device": "cpu"})
    model = DiffusionConfig(data_dim=2 if data in MIXTURES else DIGIT_SIDE * DIGIT_SIDE, steps=STEPS)
    return RunSpec("diffusion", asdict(model), train, data=data)


def run(data: str) -> Run:
    return spec(data).load()


@trains
def runs() -> list[RunSpec]:
    return [spec(data) for data in (*MIXTURES, "digits")]


def _chain(data: str, n: int, add_noise: bool) -> tuple[torch.Tensor, dict, float]:
    """n samples of the chapter's model (output scale), the kept steps, and the sampling seconds."""
    model = run(data).model
    started = time.perf_counter()
    x, kept = model.sample_chain(n, torch.Generator().manual_seed(SEED), add_noise=add_noise, keep=KEEP)
    return model.as_output(x), kept, time.perf_counter() - started


def _spread(points: torch.Tensor, dataset: str) -> float:
    """Mean distance from each point to its nearest mode, in the mode's standard deviations (real data: about 1.25)."""
    mixture = MIXTURES[dataset]
    return ((torch.cdist(points.double(), mixture.means.double()).min(1).values) / mixture.std).mean().item()


def _pairwise(images: np.ndarray) -> float:
    """Mean Euclidean distance between two different images of a set (intensities in [0, 1]): its diversity."""
    x = torch.as_tensor(images, dtype=torch.float64)
    distances = torch.cdist(x, x)
    return (distances.sum() / (len(x) * (len(x) - 1))).item()


@result("diffusion-points")
def points() -> dict:
    """The 2-D runs: PacGAN's metrics with and without the reverse steps' fresh noise (the ablation on the grid)."""
    table: dict = {"steps": STEPS, "keep": list(KEEP)}
    for dataset in MIXTURES:
        r = run(dataset)
        entry = {"train_seconds": r.result.seconds, "epochs": len(r.result.history), "real_spread": _spread(MIXTURES[dataset].sample(EVAL_SIZE, torch.Generator().manual_seed(SEED))[0], dataset)}
        for label, add_noise in (("noise", True), ("no_noise", False)) if dataset == "grid" else (("noise", True),):
            samples, kept, seconds = _chain(dataset, EVAL_SIZE, add_noise)
            scores = mode_metrics(samples, MIXTURES[dataset])
            entry[label] = {
                **scores,
                "spread": _spread(samples, dataset),
                "sample_seconds": seconds,
                "trajectory": {str(t): x_t[:SHOWN_POINTS].tolist() for t, (x_t, _) in kept.items()},
                "final": samples[:SHOWN_POINTS].tolist(),
            }
        table[dataset] = entry
    return table


@result("diffusion-digits")
def digits() -> dict:
    """Digits: the judge's reading, the diversity, with and without fresh noise; the chain of six samples; the bound on the NLL."""
    r = run("digits")
    real = digits_splits().test.x.numpy() / (DIGIT_LEVELS - 1)
    table: dict = {"train_seconds": r.result.seconds, "epochs": len(r.result.history), "steps": STEPS, "keep": list(KEEP)}
    table["real"] = {**metrics.sample_scores(real), "diversity": _pairwise(real)}
    for label, add_noise in (("noise", True), ("no_noise", False)):
        images, kept, seconds = _chain("digits", 1000, add_noise)
        table[label] = {
            **metrics.sample_scores(images.numpy()),
            "diversity": _pairwise(images.numpy()),
            "ms_per_image": 1000 * seconds / len(images),
            "images": images[:SHOWN_IMAGES].tolist(),
            "chain": {str(t): {"x_t": x_t[:6].tolist(), "x0_hat": x0_hat[:6].tolist()} for t, (x_t, x0_hat) in kept.items()},
        }
    table["diversity_ratio"] = table["no_noise"]["diversity"] / table["noise"]["diversity"]
    table["bound"] = _bound(r)
    return table


def _bound(r: Run) -> dict:
    """The variational bound on the test NLL (nats per image), term by term, and the steps' KLs summed over ranges of t."""
    terms = r.model.nll_bound(digits_splits().test.x, torch.Generator().manual_seed(SEED))
    steps = terms["steps"].mean(0)  # (T - 1,): the mean L_{t-1} for t = 2 .. T
    edges = [2]  # four ranges, the first 1%, 5%, 20% of the steps and the rest: 2-10, 11-50, 51-200, 201-1000 for T = 1000
    for fraction in (0.01, 0.05, 0.2):
        edges.append(max(edges[-1] + 1, 1 + round(STEPS * fraction)))
    edges.append(STEPS + 1)
    ranges = [{"from": lo, "to": hi - 1, "nats": steps[lo - 2 : hi - 2].sum().item()} for lo, hi in zip(edges, edges[1:])]
    return {"total": terms["total"].mean().item(), "prior": terms["prior"].mean().item(), "steps": steps.sum().item(), "decoder": terms["decoder"].mean().item(), "ranges": ranges}


@result("diffusion-schedule")
def schedule() -> dict:
    """The schedule's numbers the text quotes, and the bound's weights lambda_t at a few steps."""
    model = _paper_schedule()
    bars, weights = model.alpha_bars.double(), model.elbo_weights().double()
    return {
        "alpha_bar_T": bars[-1].item(),
        "signal_T": bars[-1].sqrt().item(),
        "half_signal_step": int((bars.sqrt() < 0.5).nonzero()[0].item()) + 1,  # first t where sqrt(alpha_bar_t) < 1/2
        "weight_2": weights[1].item(),  # lambda_2, of L_1: the bound's KL terms run over t = 2 .. T
        "weight_T": weights[-1].item(),
        "weight_ratio": (weights[1] / weights[-1]).item(),
    }


# ------------------------------------------------------------------ figures


@figure("diffusion/forward-process")
def forward_process(lang: str):
    """One test digit noised in closed form at a few steps, and the signal and noise scales over t."""
    model = _paper_schedule()
    bars = model.alpha_bars
    x0 = model.as_input(digits_splits().test.x[:1])  # (1, 64) in [-1, 1]
    noise = torch.randn(1, 64, generator=torch.Generator().manual_seed(SEED))
    shown = (0, 10, 50, 100, 200, 300, 500, 700, 1000)
    fig = plt.figure(figsize=(11, 3.6))
    grid = fig.add_gridspec(2, len(shown), height_ratios=[1, 1.3])
    for i, t in enumerate(shown):
        ax = fig.add_subplot(grid[0, i])
        x_t = x0 if t == 0 else model.q_sample(x0, torch.tensor([t]), noise)
        ax.imshow(1 - model.as_output(x_t).reshape(8, 8), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"t = {t}", fontsize=9)
    ax = fig.add_subplot(grid[1, :])
    t = np.arange(1, 1001)
    ax.plot(t, bars.sqrt().numpy(), color=PALETTE[0], label=tr(lang, r"信号系数 $\sqrt{\bar\alpha_t}$", r"signal scale $\sqrt{\bar\alpha_t}$"))
    ax.plot(t, model.one_minus_alpha_bars.sqrt().numpy(), color=PALETTE[3], label=tr(lang, r"噪声系数 $\sqrt{1-\bar\alpha_t}$", r"noise scale $\sqrt{1-\bar\alpha_t}$"))
    ax.set_xlabel("t")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _scatter(ax, points, dataset: str, color=PALETTE[0], title: str | None = None) -> None:
    show_points(ax, points, MIXTURES[dataset].means, 3.0 if dataset == "ring" else 6.0, color, title)


@figure("diffusion/reverse-2d")
def reverse_2d(lang: str):
    """The reverse chain on both mixtures: the same points at a few steps t, from noise to data."""
    r = compute_result("diffusion-points")
    steps = [t for t in r["keep"] if t > 1]  # x_1 looks like the samples
    fig, axes = plt.subplots(2, len(steps) + 1, figsize=(1.6 * (len(steps) + 1), 3.5))
    for row, dataset in enumerate(MIXTURES):
        chain = r[dataset]["noise"]
        for col, t in enumerate(steps):
            _scatter(axes[row, col], chain["trajectory"][str(t)], dataset, title=f"t = {t}" if row == 0 else None)
        _scatter(axes[row, -1], chain["final"], dataset, PALETTE[2], title=tr(lang, "生成结果 $x_0$", "samples $x_0$") if row == 0 else None)
        axes[row, 0].set_ylabel(dataset, fontsize=9)
    fig.tight_layout()
    return fig


@figure("diffusion/denoising-digits")
def denoising_digits(lang: str):
    """Six samples along the reverse chain: x_t (what the chain holds) and the network's guess of x_0 at that step."""
    chain = compute_result("diffusion-digits")["noise"]["chain"]
    steps = sorted((int(t) for t in chain), reverse=True)
    fig, axes = plt.subplots(1, 2, figsize=(1.1 * len(steps), 3.3))
    for ax, key, title in (
        (axes[0], "x_t", tr(lang, "链上的 $x_t$", "$x_t$ along the chain")),
        (axes[1], "x0_hat", tr(lang, r"同一步网络对 $x_0$ 的估计 $\hat{x}_0$", r"the network's estimate $\hat{x}_0$ at the same step")),
    ):
        columns = np.stack([np.asarray(chain[str(t)][key]) for t in steps], axis=1)  # (6, steps, 64)
        show_images(ax, columns.reshape(-1, 64), rows=len(columns), title=title)
    fig.supxlabel(tr(lang, "从左到右 t = ", "from left to right, t = ") + ", ".join(str(t) for t in steps), fontsize=9)
    fig.tight_layout()
    return fig


@figure("diffusion/no-noise")
def no_noise(lang: str):
    """The ablation: the reverse chain without its fresh noise, on the grid and on the digits."""
    points, images = compute_result("diffusion-points")["grid"], compute_result("diffusion-digits")
    real = digits_splits().test.x[:SHOWN_IMAGES].numpy() / (DIGIT_LEVELS - 1)
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.3), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1]})
    _scatter(axes[0], points["noise"]["final"], "grid", PALETTE[2], tr(lang, "grid：每步加新噪声", "grid: fresh noise every step"))
    _scatter(axes[1], points["no_noise"]["final"], "grid", PALETTE[1], tr(lang, "grid：不加噪声", "grid: no fresh noise"))
    show_images(axes[2], real, rows=8, title=tr(lang, "真实的测试集数字", "real test digits"))
    show_images(axes[3], np.asarray(images["noise"]["images"]), rows=8, title=tr(lang, "每步加新噪声", "fresh noise every step"))
    show_images(axes[4], np.asarray(images["no_noise"]["images"]), rows=8, title=tr(lang, "不加噪声", "no fresh noise"))
    fig.tight_layout()
    return fig


@figure("diffusion/elbo-weights")
def elbo_weights(lang: str):
    """The weight lambda_t the bound gives each step's noise error, against the simple loss's equal weights."""
    weights = _paper_schedule().elbo_weights().numpy()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    t = np.arange(1, 1001)
    ax.plot(t, weights, color=PALETTE[0], label=tr(lang, r"变分下界：$\lambda_t = \beta_t / (2\alpha_t(1-\bar\alpha_t))$", r"the bound: $\lambda_t = \beta_t / (2\alpha_t(1-\bar\alpha_t))$"))
    ax.plot(t, np.full_like(weights, weights.mean()), color=PALETTE[1], ls="--", label=tr(lang, "简化损失：每步同样的权重", "the simple loss: equal weights"))
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel(tr(lang, r"$\Vert\epsilon - \epsilon_\theta\Vert^2$ 的权重", r"weight of $\Vert\epsilon - \epsilon_\theta\Vert^2$"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
