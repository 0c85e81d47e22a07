"""Figures and numbers of the flow-matching chapter.

The models are the DDPM chapter's network trained with the flow-matching loss instead of the
noise-prediction loss, at the DDPM's budget (``recipes.flow``): Adam with a cosine decay, batches of
500 points for 20 epochs on each 2-D mixture, batches of 100 digits for 1000 epochs, seed 0. Samples
are drawn with Euler steps from the same noise at every number of steps in ``STEPS``, so that a
change in quality is the number of steps alone. On the mixtures the exact velocity field
(``experiments.flow.mixture_velocity``) is sampled the same way: a perfectly trained network.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch
from matplotlib import pyplot as plt

from unimodel import metrics
from unimodel.chapters.diffusion import diversity, scatter, spread
from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE, digits_splits
from unimodel.experiments.flow import euler_sample, flow_matching_loss, interpolate, mixture_velocity, training_example
from unimodel.figures.registry import budget, compute_result, exported, figure, result, trains
from unimodel.figures.style import PALETTE, show_images, show_points, tr
from unimodel.mixtures import EVAL_SIZE, MIXTURES, mode_metrics
from unimodel.models.flow import FlowConfig, FlowMatching
from unimodel.recipes.flow import train_defaults
from unimodel.runs import Run, RunSpec
from unimodel.training import TrainConfig
from unimodel.website.exports import Export

SEED = 0
STEPS = (1, 2, 4, 8, 16, 32, 100)  # Euler steps compared; 100 is the model's default
SHOWN_STEPS = (1, 2, 4, 8, 100)  # the columns of the figures
TIMES = (1.0, 0.75, 0.5, 0.25, 0.0)  # where the marginals figure compares p_t with the ODE's points
FIELD_TIMES = (0.9, 0.5, 0.1)  # where the learned field is compared with the exact one
LOSS_DRAWS = budget(full=20_000, quick=2000)  # (x_0, t, eps) draws on which the loss and its floor are measured
POINTS = budget(full=EVAL_SIZE, quick=500)  # samples per number of steps on a mixture (PacGAN scores 2500)
SHOWN_POINTS = 600
SHOWN_IMAGES = 16
DIGIT_SAMPLES = budget(full=1000, quick=200)
WIDGET_STEPS = 8  # the Euler steps of the widget's reference sample


def spec(data: str) -> RunSpec:
    """The chapter's model of ``data`` ("ring", "grid" or "digits")."""
    defaults = train_defaults(data)
    epochs = budget(full=defaults["epochs"], quick=1 if data in MIXTURES else 20)
    train = TrainConfig(**{**defaults, "epochs": epochs, "seed": SEED, "device": "cpu"})
    return RunSpec("flow", asdict(FlowConfig(data_dim=2 if data in MIXTURES else DIGIT_SIDE * DIGIT_SIDE)), train, data=data)


def run(data: str) -> Run:
    return spec(data).load()


@trains
def runs() -> list[RunSpec]:
    return [spec(data) for data in (*MIXTURES, "digits")]


def _noise(n: int, dim: int) -> torch.Tensor:
    return torch.randn((n, dim), generator=torch.Generator().manual_seed(SEED))


def _exact(dataset: str):
    """The mixture's exact field v*(x, t) = E[eps - x_0 | x_t = x]: what a perfectly trained network would give."""
    mixture = MIXTURES[dataset]
    return lambda x, t: mixture_velocity(x.double(), t.double(), mixture.means.double(), mixture.std).to(x.dtype)


@torch.no_grad()
def _timed_sample(field, noise: torch.Tensor, steps: int) -> tuple[torch.Tensor, float]:
    """Euler samples of ``field`` from ``noise`` after ``steps`` steps, and the seconds they took."""
    started = time.perf_counter()
    samples = euler_sample(field, noise, steps)
    return samples, time.perf_counter() - started


def _label(t: float) -> str:
    """A time as a result key, t = 0.9 as "t90" (the pages' placeholders split keys at dots)."""
    return f"t{round(100 * t)}"


@torch.no_grad()
def _losses(model: FlowMatching, dataset: str) -> dict:
    """The flow-matching loss of the trained network and of the exact field on the same fresh draws: the gap, and the floor no network can pass."""
    generator = torch.Generator().manual_seed(SEED)
    x0 = MIXTURES[dataset].sample(LOSS_DRAWS, generator)[0].float()
    t, noise, x_t = training_example(x0, generator)
    network = flow_matching_loss(model.velocity(x_t, t), x0, noise).item()
    floor = flow_matching_loss(_exact(dataset)(x_t, t), x0, noise).item()
    # the field's error where samples go, at points of the marginal p_t: the mean of |v_theta - v*| and, for scale, of |v*|
    field_error, field_size = {}, {}
    for time_ in FIELD_TIMES:
        at = torch.full((LOSS_DRAWS,), time_)
        x = interpolate(x0, noise, at)
        exact = _exact(dataset)(x, at)
        field_error[_label(time_)] = (model.velocity(x, at) - exact).norm(dim=1).mean().item()
        field_size[_label(time_)] = exact.norm(dim=1).mean().item()
    # how far such an error moves a sample over the last tenth of the time (t from 0.1 to 0), in the modes' standard deviations
    drift = FIELD_TIMES[-1] * field_error[_label(FIELD_TIMES[-1])] / MIXTURES[dataset].std
    return {"draws": LOSS_DRAWS, "network": network, "floor": floor, "field_error": field_error, "field_size": field_size, "last_tenth_drift": drift}


@result("flow-matching-points")
def points() -> dict:
    """The 2-D runs: PacGAN's metrics of 2500 samples at each number of Euler steps, for the network and the exact field."""
    table: dict = {"steps": list(STEPS), "samples": POINTS}
    for dataset in MIXTURES:
        r = run(dataset)
        model, noise = r.model, _noise(POINTS, 2)
        entry: dict = {"train_seconds": r.result.seconds, "epochs": len(r.result.history), "loss": _losses(model, dataset)}
        data_mean = MIXTURES[dataset].means.mean(0)
        for name, field in (("network", model.velocity), ("exact", _exact(dataset))):
            rows = {}
            for steps in STEPS:
                samples, seconds = _timed_sample(field, noise, steps)
                rows[str(steps)] = {
                    **mode_metrics(samples, MIXTURES[dataset]),
                    "spread": spread(samples, dataset),
                    "distance_to_mean": (samples.double() - data_mean).norm(dim=1).mean().item(),  # one step lands near the data's mean
                    "sample_seconds": seconds,
                    "final": samples[:SHOWN_POINTS].tolist(),
                }
            entry[name] = rows
        real = MIXTURES[dataset].sample(POINTS, torch.Generator().manual_seed(SEED))[0]
        entry["real"] = {"spread": spread(real, dataset), "distance_to_mean": (real.double() - data_mean).norm(dim=1).mean().item()}
        table[dataset] = entry
    return table


@result("flow-matching-marginals")
def marginals() -> dict:
    """On the grid: points of p_t drawn from the straight paths, and noise carried to the same times by the network's ODE."""
    model, n = run("grid").model, SHOWN_POINTS
    generator = torch.Generator().manual_seed(SEED + 1)
    x0 = MIXTURES["grid"].sample(n, generator)[0].float()
    noise = torch.randn((n, 2), generator=generator)
    chain = model.trajectory(_noise(n, 2), 100)  # (101, n, 2): t = 1, 0.99, ..., 0
    return {
        "times": list(TIMES),
        "paths": {str(t): interpolate(x0, noise, t).tolist() for t in TIMES},
        "ode": {str(t): chain[round((1 - t) * 100)].tolist() for t in TIMES},
    }


@result("flow-matching-digits")
def digits() -> dict:
    """Digits: how the judge reads 1000 samples drawn from the same noise at each number of Euler steps."""
    r = run("digits")
    model, noise = r.model, _noise(DIGIT_SAMPLES, DIGIT_SIDE * DIGIT_SIDE)
    real = digits_splits().test.x.numpy() / (DIGIT_LEVELS - 1)
    table: dict = {"train_seconds": r.result.seconds, "epochs": len(r.result.history), "steps": list(STEPS), "samples": DIGIT_SAMPLES}
    table["real"] = {**metrics.sample_scores(real), "diversity": diversity(real)}
    for steps in STEPS:
        images, seconds = _timed_sample(model.velocity, noise, steps)
        images = model.as_output(images)
        table[str(steps)] = {
            **metrics.sample_scores(images.numpy()),
            "diversity": diversity(images.numpy()),
            "ms_per_image": 1000 * seconds / DIGIT_SAMPLES,
            "images": images[:SHOWN_IMAGES].tolist(),
        }
    return table


# ------------------------------------------------------------------ figures


@figure("flow-matching/marginals")
def marginals_figure(lang: str):
    """Top: p_t drawn from the straight paths; bottom: noise carried to the same t by the learned field."""
    r = compute_result("flow-matching-marginals")
    fig, axes = plt.subplots(2, len(r["times"]), figsize=(1.9 * len(r["times"]), 4.0))
    for col, t in enumerate(r["times"]):
        scatter(axes[0, col], r["paths"][str(t)], "grid", PALETTE[0], f"t = {t:g}")
        scatter(axes[1, col], r["ode"][str(t)], "grid", PALETTE[2])
    axes[0, 0].set_ylabel(tr(lang, "直线路径上的 $x_t$", "$x_t$ on the straight paths"), fontsize=8)
    axes[1, 0].set_ylabel(tr(lang, "沿学到的场从噪声走来", "from noise along the learned field"), fontsize=8)
    fig.tight_layout()
    return fig


@figure("flow-matching/field")
def field_figure(lang: str):
    """The learned velocity field beside the exact one on the ring, at three times."""
    model = run("ring").model
    ticks = torch.linspace(-1.6, 1.6, 13)
    grid = torch.cartesian_prod(ticks, ticks)  # (169, 2)
    fig, axes = plt.subplots(2, len(FIELD_TIMES), figsize=(2.6 * len(FIELD_TIMES), 5.2))
    for col, t in enumerate(FIELD_TIMES):
        at = torch.full((len(grid),), t)
        for row, (field, color, label) in enumerate(
            (
                (_exact("ring"), PALETTE[0], tr(lang, "精确的场 $v^*$", "exact field $v^*$")),
                (model.velocity, PALETTE[2], tr(lang, "学到的场 $v_\\theta$", "learned field $v_\\theta$")),
            )
        ):
            with torch.no_grad():
                v = -field(grid, at)  # the direction a sample moves as t decreases
            v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)  # directions only: near a mode at small t the exact field is steep
            ax = axes[row, col]
            ax.quiver(grid[:, 0], grid[:, 1], v[:, 0], v[:, 1], color=color, angles="xy", scale_units="xy", scale=5, width=0.006)
            show_points(ax, np.zeros((0, 2)), MIXTURES["ring"].means, 1.7, color, f"t = {t:g}" if row == 0 else None)
            if col == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle(
        tr(
            lang,
            "箭头：t 减小时样本移动的方向 $-v$（只画方向，不画长短）",
            "arrows: the direction a sample moves as t decreases, $-v$ (direction only, not length)",
        ),
        fontsize=8,
    )
    fig.tight_layout()
    return fig


@figure("flow-matching/steps", uses=("diffusion-points",))
def steps_figure(lang: str):
    """Grid samples after 1 to 100 Euler steps; the modes captured and the share of high-quality points against the steps, both mixtures."""
    r, ddpm = compute_result("flow-matching-points"), compute_result("diffusion-points")
    fig = plt.figure(figsize=(11, 5.2))
    layout = fig.add_gridspec(2, len(SHOWN_STEPS), height_ratios=[1, 1.25])
    for col, steps in enumerate(SHOWN_STEPS):
        title = tr(lang, f"{steps} 步", f"{steps} step" + ("s" if steps > 1 else ""))
        scatter(fig.add_subplot(layout[0, col]), r["grid"]["network"][str(steps)]["final"], "grid", PALETTE[2], title)
    bottom = layout[1, :].subgridspec(1, 2, wspace=0.25)
    panels = (
        (fig.add_subplot(bottom[0, 0]), lambda row, dataset: 100 * row["modes"] / len(MIXTURES[dataset].means), tr(lang, "捕获的模式 %", "modes captured %")),
        (fig.add_subplot(bottom[0, 1]), lambda row, dataset: 100 * row["high_quality"], tr(lang, "高质量样本 %", "high-quality samples %")),
    )
    for ax, value, ylabel in panels:
        for dataset, color in (("ring", PALETTE[0]), ("grid", PALETTE[2])):
            for name, style in (("network", "-"), ("exact", ":")):
                label = f"{dataset}, " + (tr(lang, "网络", "network") if name == "network" else tr(lang, "精确的场", "exact field"))
                ax.plot(STEPS, [value(r[dataset][name][str(s)], dataset) for s in STEPS], style, color=color, marker="o", ms=3, label=label)
            ax.axhline(value(ddpm[dataset]["noise"], dataset), color=color, ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(tr(lang, "欧拉步数（网络前向次数）", "Euler steps (network passes)"))
        ax.set_ylabel(ylabel)
    panels[0][0].legend(fontsize=7)
    panels[1][0].set_title(tr(lang, f"虚线：DDPM，{ddpm['steps']} 步", f"dashed: DDPM, {ddpm['steps']} steps"), fontsize=8)
    fig.tight_layout()
    return fig


@figure("flow-matching/digits", uses=("diffusion-digits",))
def digits_figure(lang: str):
    """The same 16 noises after 1 to 100 Euler steps, and the judge's confidence against the steps."""
    r, ddpm = compute_result("flow-matching-digits"), compute_result("diffusion-digits")
    fig = plt.figure(figsize=(10, 3.0))
    layout = fig.add_gridspec(1, 1, left=0.68, right=0.98, bottom=0.17)
    images = fig.add_gridspec(len(SHOWN_STEPS), 1, left=0.08, right=0.58, hspace=0.15)
    for row, steps in enumerate(SHOWN_STEPS):
        ax = fig.add_subplot(images[row, 0])
        show_images(ax, np.asarray(r[str(steps)]["images"]), rows=1)
        ax.text(-0.01, 0.5, tr(lang, f"{steps} 步", f"{steps} step" + ("s" if steps > 1 else "")), transform=ax.transAxes, ha="right", va="center", fontsize=8)
    ax = fig.add_subplot(layout[0, 0])
    ax.plot(STEPS, [r[str(s)]["confidence"] for s in STEPS], "-o", color=PALETTE[2], ms=3, label=tr(lang, "流匹配", "flow matching"))
    ax.axhline(ddpm["noise"]["confidence"], color=PALETTE[0], ls="--", lw=0.8, label=f"DDPM, {ddpm['steps']} " + tr(lang, "步", "steps"))
    ax.axhline(r["real"]["confidence"], color=PALETTE[7], ls=":", lw=0.8, label=tr(lang, "真实测试数字", "real test digits"))
    ax.set_xscale("log")
    ax.set_xlabel(tr(lang, "欧拉步数", "Euler steps"))
    ax.set_ylabel(tr(lang, "评判器的平均置信度", "the judge's mean confidence"))
    ax.legend(fontsize=7)
    return fig


@exported("flow-matching/digits")
def velocity_field() -> Export:
    """The digits model's velocity v_theta(x_t, t) for the page's widget, which takes the Euler steps itself.

    ``meta`` carries a reference: one seeded noise taken through ``WIDGET_STEPS`` Euler steps here, which the
    widget's own steps must reproduce.
    """
    model = run("digits").model
    noise = _noise(1, model.config.data_dim)
    with torch.no_grad():
        x0 = model.as_output(euler_sample(model.velocity, noise, WIDGET_STEPS))
    meta = {
        "default_steps": model.config.sample_steps,
        "reference": {"noise": noise[0].tolist(), "steps": WIDGET_STEPS, "x_0": x0[0].tolist(), "tolerance": 1e-3},
    }
    return Export(model, lambda flow, x, t: flow.velocity(x, t), {"x": noise, "t": torch.tensor([1.0])}, ("v",), meta)
