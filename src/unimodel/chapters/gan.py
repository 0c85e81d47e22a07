"""Figures and numbers of the GAN chapter.

The 2-D runs use the benchmark's configurations (``unimodel.experiments.gan2d``): Adam
lr 4e-3 with beta1 0.5 and a cosine decay, batches of 500 points, 40 epochs
of 200 steps, the non-saturating loss. The ablations of the loss and of the
turns use a shorter budget (``SHORT``, 10 epochs), against a plain GAN with
the same budget. Each run records 400 generated points after every epoch,
for the snapshots. The build trains the seeds in ``BUILD_SEEDS``;
``unimodel bench gan2d`` runs as many as asked.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib import pyplot as plt
from torch import nn

from unimodel import metrics
from unimodel.data import DIGIT_LEVELS, digits_splits
from unimodel.experiments import gan2d
from unimodel.figures.registry import budget, compute_result, exported, figure, result, trains
from unimodel.figures.style import PALETTE, show_images, show_points, tr
from unimodel.mixtures import HQ_STDS, MIXTURES, nearest_mode
from unimodel.models.gan import GAN, GANConfig, discriminator_loss, generator_loss
from unimodel.recipes.gan import train_defaults
from unimodel.runs import Run, RunSpec
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit
from unimodel.website.exports import Export

# the seeds trained for the page's table (PacGAN's numbers are means over 10 runs); a quick build, which
# only checks that every number is computed, trains one
BUILD_SEEDS = budget(full=(0, 1, 2, 3, 4), quick=(0,))
TABLE = (("ring", "gan"), ("ring", "r1"), ("grid", "gan"), ("grid", "r1"), ("grid", "pacgan"))  # (mixture, variant) rows trained at build
EPOCHS = budget(full=train_defaults("ring")["epochs"], quick=1)  # the benchmark's budget: 40 epochs of 200 steps
SHORT = {"epochs": budget(full=10, quick=1)}  # the budget of the ablations: 2000 steps
SEED = 0
LABELS = {"gan": "GAN", "r1": "GAN + R1", "pacgan": "PacGAN4"}
COLORS = {"gan": PALETTE[0], "r1": PALETTE[2], "pacgan": PALETTE[1]}

# PacGAN Table 1 (Lin et al. 2018, arXiv 1712.04086), mean ± standard error over 10 runs
PUBLISHED = {
    "GAN": {"ring": (6.3, 0.5, 98.2, 0.2), "grid": (17.3, 0.8, 94.8, 0.7)},
    "PacGAN2": {"ring": (7.9, 0.1, 95.6, 2.0), "grid": (23.8, 0.7, 91.3, 0.8)},
    "PacGAN3": {"ring": (7.8, 0.1, 97.7, 0.3), "grid": (24.6, 0.4, 94.2, 0.4)},
    "PacGAN4": {"ring": (7.8, 0.1, 95.9, 1.4), "grid": (24.8, 0.2, 93.6, 0.6)},
}


def spec_2d(dataset: str, variant: str, seed: int = SEED, **changes) -> RunSpec:
    """A benchmark configuration, with ``changes`` to its TrainConfig (``turns``) or GANConfig (``loss``)."""
    train_fields = set(TrainConfig.__dataclass_fields__)
    model = gan2d.model_config(variant, dataset, **{k: v for k, v in changes.items() if k not in train_fields})
    train = gan2d.train_config(dataset, seed, **{"epochs": EPOCHS, **{k: v for k, v in changes.items() if k in train_fields}})
    return RunSpec("gan", model, train, data=dataset, record=gan2d.snapshot)


def run_2d(dataset: str, variant: str, seed: int = SEED, **changes) -> Run:
    return spec_2d(dataset, variant, seed, **changes).load()


def _scored(dataset: str, variant: str, seed: int = SEED, **changes) -> dict:
    return gan2d.score(run_2d(dataset, variant, seed, **changes), seed)


@result("gan-benchmark")
def benchmark() -> dict:
    """Our rows of PacGAN's Table 1: each variant on each mixture, over BUILD_SEEDS."""
    table: dict = {"seeds": len(BUILD_SEEDS), "published": PUBLISHED, "epochs": EPOCHS, "lr": train_defaults("ring")["lr"], "r1_weight": gan2d.R1_WEIGHT}
    for dataset, variant in TABLE:
        rows = [{"dataset": dataset, **_scored(dataset, variant, seed)} for seed in BUILD_SEEDS]
        summary = gan2d.summarize(rows)
        for name in ("high_quality", "direct_high_quality"):
            if name in summary:
                summary[f"{name}_percent"] = {k: 100 * v for k, v in summary[name].items()}
        summary["min_modes"] = min(row["modes"] for row in rows)
        last = run_2d(dataset, variant).result.history[-1]  # seed 0's last epoch
        summary.update(d_real=last["d_real"], d_fake=last["d_fake"])
        table[f"{dataset}-{variant}"] = summary
    return table


def _scatter(ax, points, dataset: str, color=PALETTE[0], title: str | None = None) -> None:
    show_points(ax, points, MIXTURES[dataset].means, 1.6 if dataset == "ring" else 5.5, color, title)


@figure("gan/snapshots")
def snapshots(lang: str):
    """Generated points over training, plain GAN and GAN + R1, on both mixtures."""
    rows = [(d, v) for d in gan2d.DATASETS for v in ("gan", "r1")]
    shown = sorted({e for e in (1, 2, EPOCHS // 8, EPOCHS // 4, EPOCHS // 2, EPOCHS) if 1 <= e <= EPOCHS})
    fig, axes = plt.subplots(len(rows), len(shown), figsize=(1.9 * len(shown), 2.0 * len(rows)), squeeze=False)
    for r, (dataset, variant) in enumerate(rows):
        history = run_2d(dataset, variant).result.history
        for c, epoch in enumerate(shown):
            _scatter(axes[r, c], history[epoch - 1]["points"], dataset, COLORS[variant])
            if r == 0:
                axes[r, c].set_title(tr(lang, f"第 {epoch} 轮", f"epoch {epoch}"), fontsize=9)
        axes[r, 0].set_ylabel(f"{dataset} · {LABELS[variant]}", fontsize=9)
    fig.tight_layout()
    return fig


@figure("gan/mode-histograms")
def mode_histograms(lang: str):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 2.6]})
    for ax, dataset in zip(axes, gan2d.DATASETS):
        modes = len(MIXTURES[dataset].means)
        for offset, variant in ((-0.2, "gan"), (0.2, "r1")):
            counts = _scored(dataset, variant)["counts"]
            label = LABELS[variant] + (tr(lang, " + 拒绝采样", " + rejection sampling") if variant == "r1" else "")
            ax.bar(np.arange(modes) + offset, counts, width=0.4, color=COLORS[variant], label=label)
        ax.axhline(2500 / modes, color="gray", ls=":", lw=1)
        ax.set_xlabel(tr(lang, "模式编号", "mode"))
        ax.set_title(tr(lang, f"{dataset}：每个模式的高质量样本数（种子 {SEED}）", f"{dataset}: high-quality samples per mode (seed {SEED})"), fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@figure("gan/discriminator")
def discriminator_surface(lang: str):
    """D(x) over the plane for the plain GAN on the ring (a pack of 1 is a point), with its samples."""
    run = run_2d("ring", "gan")
    axis = torch.linspace(-1.6, 1.6, 161)
    grid = torch.cartesian_prod(axis, axis)[:, [1, 0]]
    with torch.no_grad():
        d = torch.sigmoid(run.model.discriminator(grid)).reshape(len(axis), len(axis)).numpy()
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    image = ax.imshow(d, extent=(-1.6, 1.6, -1.6, 1.6), origin="lower", cmap="RdBu_r", vmin=0, vmax=1)
    _scatter(ax, run.result.history[-1]["points"], "ring", "black")
    fig.colorbar(image, ax=ax, label="D(x)")
    ax.set_title(tr(lang, "训练结束时判别器的输出 D(x)", "the discriminator's D(x) after training"), fontsize=9)
    return fig


@figure("gan/losses")
def losses(lang: str):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.3))
    for variant in ("gan", "r1", "pacgan"):
        history = run_2d("grid", variant).result.history
        epochs = [h["epoch"] for h in history]
        name, color = LABELS[variant], COLORS[variant]
        axes[0].plot(epochs, [h["discriminator_loss"] for h in history], color=color, label=f"{name}: L_D")
        axes[0].plot(epochs, [h["generator_loss"] for h in history], color=color, ls="--", label=f"{name}: L_G")
        axes[1].plot(epochs, [h["d_real"] for h in history], color=color, label=f"{name}: D(x)")
        axes[1].plot(epochs, [h["d_fake"] for h in history], color=color, ls="--", label=f"{name}: D(G(z))")
    axes[0].axhline(2 * math.log(2), color="gray", ls=":", lw=1)
    axes[0].set_title(tr(lang, "grid 上的损失（每轮平均），点线为 2 log 2", "losses on the grid (epoch means); dotted: 2 log 2"), fontsize=9)
    axes[1].axhline(0.5, color="gray", ls=":", lw=1)
    axes[1].set_title(tr(lang, "判别器的平均输出", "the discriminator's mean output"), fontsize=9)
    for ax in axes:
        ax.set_xlabel(tr(lang, "轮次", "epoch"))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ rejection sampling


def _judged_candidates() -> tuple[Run, torch.Tensor, torch.Tensor]:
    """2500 of G's own draws on the grid (seed 0's GAN + R1), and which of them rejection sampling keeps."""
    run = run_2d("grid", "r1")
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        candidates = run.model.draw(2500, generator)
        return run, candidates, run.model.accepted(candidates, generator)


WIDGET_DRAWS = 1000  # G's draws the page's widget makes at a time
WIDGET_GRID = 48  # the widget shows the ratio network's logit on WIDGET_GRID x WIDGET_GRID points
WIDGET_EXTENT = {"ring": 1.5, "grid": 5.5}  # the widget's plane is [-extent, extent]^2


def _draw_and_judge(gan: GAN, z: torch.Tensor, plane: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """G(z) (n, 2), the ratio network's logit l on those draws (n,), and l on the points of the plane (m,)."""
    points = gan.generator(z)
    return points, gan.ratio(points).squeeze(1), gan.ratio(plane).squeeze(1)


def _widget_export(dataset: str) -> Export:
    """Seed 0's GAN + R1 on ``dataset`` for the page's widget: the generator and the ratio network that rejection sampling reads."""
    gan = run_2d(dataset, "r1").model
    extent, mixture = WIDGET_EXTENT[dataset], MIXTURES[dataset]
    axis = torch.linspace(-extent, extent, WIDGET_GRID)
    plane = torch.cartesian_prod(axis.flip(0), axis)[:, [1, 0]]  # row by row from the top: (x, y) with y falling, (m, 2)
    z = torch.randn(WIDGET_DRAWS, gan.config.noise_dim, generator=torch.Generator().manual_seed(SEED))
    meta = {"extent": extent, "side": WIDGET_GRID, "means": mixture.means.tolist(), "std": mixture.std, "high_quality_stds": HQ_STDS}
    return Export(gan, _draw_and_judge, {"z": z, "plane": plane}, ("points", "logits", "plane_logits"), meta)


@exported("gan/ring")
def ring_widget() -> Export:
    return _widget_export("ring")


@exported("gan/grid")
def grid_widget() -> Export:
    return _widget_export("grid")


@result("gan-rejection")
def rejection() -> dict:
    run, candidates, keep = _judged_candidates()
    high_quality = nearest_mode(candidates, MIXTURES["grid"])[0] < HQ_STDS
    return {
        "candidates": len(candidates),
        "accepted": keep.double().mean().item(),
        "draws_per_sample": 1 / keep.double().mean().item(),  # G's draws needed for each kept point, on average
        "high_quality_before": high_quality.double().mean().item(),
        "high_quality_kept": high_quality[keep].double().mean().item(),
        "off_mode_dropped": (~keep[~high_quality]).double().mean().item(),  # share of the off-mode draws thrown away
        "on_mode_dropped": (~keep[high_quality]).double().mean().item(),
    }


@figure("gan/rejection")
def rejection_figure(lang: str):
    run, candidates, keep = _judged_candidates()
    axis = torch.linspace(-5.5, 5.5, 221)
    plane = torch.cartesian_prod(axis, axis)[:, [1, 0]]
    with torch.no_grad():
        log_ratio = run.model.ratio(plane).reshape(len(axis), len(axis))
        threshold = run.model.ratio(candidates).median()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    image = axes[0].imshow((log_ratio - threshold).numpy(), extent=(-5.5, 5.5, -5.5, 5.5), origin="lower", cmap="RdBu_r", vmin=-4, vmax=4)
    fig.colorbar(image, ax=axes[0], label="l(x) − M")
    axes[0].set_title(tr(lang, "比值网络的 logit 减去中位数 M（红：总是保留）", "the ratio network's logit minus the median M (red: always kept)"), fontsize=9)
    kept, dropped = candidates[keep], candidates[~keep]
    _scatter(axes[1], kept, "grid", PALETTE[0])
    axes[1].scatter([], [], s=12, color=PALETTE[0], label=tr(lang, f"保留的 {len(kept)} 个（大多叠在模式上）", f"{len(kept)} kept (most of them on the modes)"))
    axes[1].scatter(
        dropped[:, 0], dropped[:, 1], s=8, marker="x", lw=0.6, color=PALETTE[1], label=tr(lang, f"丢掉的 {len(dropped)} 个", f"{len(dropped)} dropped")
    )
    axes[1].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False)
    axes[1].set_title(
        tr(
            lang,
            f"生成器的 {len(candidates)} 个点：保留的（蓝点）与丢掉的（橙叉）",
            f"{len(candidates)} draws of G: kept (blue dots) and dropped (orange crosses)",
        ),
        fontsize=9,
    )
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the optimal discriminator


class _DiscriminatorAlone(nn.Module):
    """A discriminator trained against a fixed generator: real points N(0, 1), generated N(SHIFT, 1), in 1-D."""

    SHIFT = 1.5

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))

    def forward(self, batch):
        real = batch[0]
        fake = torch.randn_like(real) + self.SHIFT
        return discriminator_loss(self.net(real).squeeze(1), self.net(fake).squeeze(1)), {}


@result("gan-optimal-discriminator")
def optimal_discriminator() -> dict:
    set_seed(SEED)
    model = _DiscriminatorAlone()
    real = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(SEED))
    config = TrainConfig(epochs=30, batch_size=500, optimizer="adam", lr=2e-3, patience=0, seed=SEED, device="cpu")
    fit(model, (real,), config, progress=False)
    x = torch.linspace(-4, 5.5, 200)[:, None]
    normal = torch.distributions.Normal(0.0, 1.0)
    p_data, p_g = normal.log_prob(x).exp(), normal.log_prob(x - model.SHIFT).exp()
    with torch.no_grad():
        learned = torch.sigmoid(model.net(x))
    optimal = p_data / (p_data + p_g)  # D*(x)
    # the value of the game at D*: E_data[log D*] + E_g[log(1 - D*)] = 2 JS(p_data, p_g) - log 4
    big = torch.randn(400_000, 1, generator=torch.Generator().manual_seed(SEED + 1))

    def d_star(t):
        a, b = normal.log_prob(t).exp(), normal.log_prob(t - model.SHIFT).exp()
        return a / (a + b)

    value = (d_star(big).log().mean() + (1 - d_star(big + model.SHIFT)).log().mean()).item()
    with torch.no_grad():
        reached = -discriminator_loss(model.net(big).squeeze(1), model.net(big + model.SHIFT).squeeze(1)).item()
    return {
        "x": x.squeeze(1).tolist(),
        "learned": learned.squeeze(1).tolist(),
        "optimal": optimal.squeeze(1).tolist(),
        "max_error": (learned - optimal).abs().max().item(),
        "value_at_optimum": value,
        "value_reached": reached,
        "js": (value + math.log(4)) / 2,
        "shift": model.SHIFT,
    }


@figure("gan/optimal-discriminator")
def optimal_discriminator_figure(lang: str):
    r = compute_result("gan-optimal-discriminator")
    x = np.array(r["x"])
    fig, ax = plt.subplots(figsize=(6, 3.3))
    normal = np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)
    shifted = np.exp(-((x - r["shift"]) ** 2) / 2) / np.sqrt(2 * np.pi)
    ax.fill_between(x, normal, alpha=0.2, color=PALETTE[0], label=tr(lang, "p_data = N(0, 1)", "p_data = N(0, 1)"))
    ax.fill_between(x, shifted, alpha=0.2, color=PALETTE[1], label=f"p_g = N({r['shift']}, 1)")
    ax.plot(x, r["optimal"], color="black", lw=2, label="D*(x) = p_data / (p_data + p_g)")
    ax.plot(x, r["learned"], color=PALETTE[3], ls="--", lw=2, label=tr(lang, "训练出的 D(x)", "trained D(x)"))
    ax.set_xlabel("x")
    ax.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ saturation: minimax vs non-saturating


def _gradient_at_start() -> dict:
    """At initialisation, train D alone for a while (it wins easily), then compare G's gradient norm under both losses."""
    set_seed(SEED)
    model = GAN(GANConfig(**gan2d.model_config("gan", "ring")))
    real = MIXTURES["ring"].sample(20_000, torch.Generator().manual_seed(SEED))
    # with turns="epoch", epoch 1 is the discriminator's turn alone: 200 steps against the untrained generator
    config = TrainConfig(epochs=1, batch_size=100, optimizer="adam", lr=1e-3, beta1=0.5, patience=0, turns="epoch", seed=SEED, device="cpu")
    fit(model, real, config, progress=False)
    model.eval()
    z = torch.randn(2500, 2, generator=torch.Generator().manual_seed(SEED))
    norms = {}
    for kind in ("minimax", "non-saturating"):
        model.zero_grad()
        logits = model.discriminator(model.generator(z)).squeeze(1)
        generator_loss(logits, kind).backward()
        norms[kind] = math.sqrt(sum(p.grad.pow(2).sum().item() for p in model.generator.parameters()))
    return {"d_fake": torch.sigmoid(logits).mean().item(), "gradient_norm": norms, "ratio": norms["non-saturating"] / norms["minimax"]}


@result("gan-saturation")
def saturation() -> dict:
    return {
        "epochs": SHORT["epochs"],
        "start": _gradient_at_start(),
        "minimax_run": _scored("ring", "gan", loss="minimax", **SHORT),
        "non_saturating_run": _scored("ring", "gan", **SHORT),
    }


@figure("gan/saturation")
def saturation_figure(lang: str):
    d = np.linspace(0.001, 0.999, 400)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    axes[0].plot(d, np.log(1 - d), color=PALETTE[3], label=tr(lang, "极小极大：log(1 − D(G(z)))", "minimax: log(1 − D(G(z)))"))
    axes[0].plot(d, -np.log(d), color=PALETTE[0], label=tr(lang, "非饱和：−log D(G(z))", "non-saturating: −log D(G(z))"))
    axes[0].set_xlabel("D(G(z))")
    axes[0].set_title(tr(lang, "生成器要最小化的损失", "the generator's loss"), fontsize=9)
    axes[0].legend(fontsize=8)
    # the gradient with respect to D's logit l, where D = sigmoid(l): minimax -D, non-saturating -(1 - D)
    axes[1].plot(d, d, color=PALETTE[3], label=tr(lang, "极小极大：|∂/∂l| = D", "minimax: |∂/∂l| = D"))
    axes[1].plot(d, 1 - d, color=PALETTE[0], label=tr(lang, "非饱和：|∂/∂l| = 1 − D", "non-saturating: |∂/∂l| = 1 − D"))
    start = compute_result("gan-saturation")["start"]
    axes[1].axvline(start["d_fake"], color="gray", ls=":", lw=1)
    axes[1].set_xlabel("D(G(z))")
    axes[1].set_title(tr(lang, "对判别器 logit 的梯度大小；点线：训练开始时", "gradient size w.r.t. D's logit; dotted: at the start"), fontsize=9)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ alternating updates


@result("gan-turns")
def turns() -> dict:
    """One step each per batch, against whole epochs in turn (D, G, D, G, ...), on the ring."""
    return {"batch": _scored("ring", "gan", **SHORT), "epoch": _scored("ring", "gan", turns="epoch", **SHORT)}


@figure("gan/turns")
def turns_figure(lang: str):
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
    for ax, turn in zip(axes, ("batch", "epoch")):
        run = run_2d("ring", "gan", **SHORT) if turn == "batch" else run_2d("ring", "gan", turns="epoch", **SHORT)
        title = (
            tr(lang, "每个批次 D 一步、G 一步", "one D step, one G step per batch")
            if turn == "batch"
            else tr(lang, "D 整轮训练，再 G 整轮训练……", "whole epochs: D, then G, then D ...")
        )
        _scatter(ax, run.result.history[-1]["points"], "ring", title=title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ digits


DIGITS_TRAIN = TrainConfig(**{**train_defaults("digits"), "epochs": budget(full=train_defaults("digits")["epochs"], quick=2), "seed": SEED, "device": "cpu"})


DIGITS_SPEC = RunSpec("gan", {"data_dim": 64}, DIGITS_TRAIN)


def digits_run() -> Run:
    return DIGITS_SPEC.load()


@trains
def runs() -> list[RunSpec]:
    table = [spec_2d(dataset, variant, seed) for dataset, variant in TABLE for seed in BUILD_SEEDS]
    ablations = [spec_2d("ring", "gan", loss="minimax", **SHORT), spec_2d("ring", "gan", **SHORT), spec_2d("ring", "gan", turns="epoch", **SHORT)]
    return table + ablations + [DIGITS_SPEC]


@result("gan-digits")
def digits() -> dict:
    run = digits_run()
    real = digits_splits().test.x.numpy() / (DIGIT_LEVELS - 1)
    return {
        "generated": metrics.sample_scores(run.model.sample(1000, torch.Generator().manual_seed(SEED)).numpy()),
        "real_test": metrics.sample_scores(real),
        "seconds": run.result.seconds,
        "epochs": len(run.result.history),
    }


@figure("gan/digits")
def digits_figure(lang: str):
    images = digits_run().model.sample(64, torch.Generator().manual_seed(SEED)).numpy()
    real = digits_splits().test.x[:64].numpy() / (DIGIT_LEVELS - 1)
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.9))
    show_images(axes[0], real, rows=8, title=tr(lang, "真实的测试集数字", "real test digits"))
    show_images(axes[1], images, rows=8, title=tr(lang, "GAN 生成的数字", "digits generated by the GAN"))
    return fig
