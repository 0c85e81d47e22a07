"""Figures and numbers of the diffusion chapter.

Every run uses the paper's schedule (T = 1000, beta linear from 1e-4 to
0.02; 100 steps under the quick profile) and the settings of
``models.diffusion.train_defaults``: Adam with a cosine decay, batches of 500
points for 20 epochs on the 2-D mixtures (4000 steps), batches of 100 digits
for 1000 epochs (10,000 steps), seed 0. The sampling chains are run once per
change of code and kept as results; the figures draw from those.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict

import numpy as np
import torch
from matplotlib import pyplot as plt
from torch.nn import functional as F

from unimodel import metrics
from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE, digits_splits
from unimodel.figures.registry import budget, compute_result, exported, figure, result, trains
from unimodel.figures.style import PALETTE, show_images, show_points, tr
from unimodel.mixtures import EVAL_SIZE, MIXTURES, mode_metrics
from unimodel.models.diffusion import Diffusion, DiffusionConfig
from unimodel.recipes.diffusion import train_defaults
from unimodel.runs import Run, RunSpec
from unimodel.training import TrainConfig
from unimodel.website.exports import Export

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


def spread(points: torch.Tensor, dataset: str) -> float:
    """Mean distance from each point to its nearest mode, in the mode's standard deviations (real data: about 1.25)."""
    mixture = MIXTURES[dataset]
    return ((torch.cdist(points.double(), mixture.means.double()).min(1).values) / mixture.std).mean().item()


def diversity(images: np.ndarray) -> float:
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
        entry = {
            "train_seconds": r.result.seconds,
            "epochs": len(r.result.history),
            "real_spread": spread(MIXTURES[dataset].sample(EVAL_SIZE, torch.Generator().manual_seed(SEED))[0], dataset),
        }
        for label, add_noise in (("noise", True), ("no_noise", False)) if dataset == "grid" else (("noise", True),):
            samples, kept, seconds = _chain(dataset, EVAL_SIZE, add_noise)
            scores = mode_metrics(samples, MIXTURES[dataset])
            entry[label] = {
                **scores,
                "spread": spread(samples, dataset),
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
    table["real"] = {**metrics.sample_scores(real), "diversity": diversity(real)}
    for label, add_noise in (("noise", True), ("no_noise", False)):
        images, kept, seconds = _chain("digits", 1000, add_noise)
        table[label] = {
            **metrics.sample_scores(images.numpy()),
            "diversity": diversity(images.numpy()),
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
    ranges = [{"from": lo, "to": hi - 1, "nats": steps[lo - 2 : hi - 2].sum().item()} for lo, hi in itertools.pairwise(edges)]
    return {
        "total": terms["total"].mean().item(),
        "prior": terms["prior"].mean().item(),
        "steps": steps.sum().item(),
        "decoder": terms["decoder"].mean().item(),
        "ranges": ranges,
    }


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


# ------------------------------------------------- the bound, looked at closely
#
# The bound above is computed by ``Diffusion.nll_bound`` with the reverse variance sigma_t^2 = beta_t,
# the choice the sampler uses. Ho et al. (2020, sec. 3.2) name a second fixed choice, the variance of the
# posterior q(x_{t-1} | x_t, x_0) itself; the same trained network can be scored with either, no retraining.
# What follows recomputes the bound with both, keeps every step's term, and sets the network's noise error
# beside that of a denoiser that only knows the 17 pixel levels.

BOUND_SEED = SEED  # the same draws of x_t as the bound above: its "beta" total is that bound


# --8<-- [start:reverse-variances]
def reverse_variances(model: Diffusion, choice: str) -> torch.Tensor:
    """σ_t² for t = 1 .. T: "beta" (β_t) or "beta_tilde" (β̃_t, the variance of q(x_{t-1} | x_t, x_0)).

    β̃_1 = 0: given x_1 and x_0 nothing about x_0 is left to draw, and a Gaussian of variance 0
    gives the decoder no density. Step 1 keeps β_1 under both choices, so both bounds share L_0.
    """
    if choice == "beta":
        return model.betas.clone()
    if choice != "beta_tilde":
        raise ValueError(f"choice must be 'beta' or 'beta_tilde', got {choice!r}")
    one_minus_prev = torch.cat([model.one_minus_alpha_bars.new_zeros(1), model.one_minus_alpha_bars[:-1]])  # 1-ᾱ_{t-1}, with ᾱ_0 = 1
    tilde = one_minus_prev / model.one_minus_alpha_bars * model.betas  # β̃_t = (1-ᾱ_{t-1}) / (1-ᾱ_t)·β_t
    tilde[0] = model.betas[0]  # β̃_1 = 0: keep β_1 for the decoder
    return tilde


# --8<-- [end:reverse-variances]


def first_step_above(alpha_bars_: torch.Tensor, threshold: float) -> int:
    """The first t (1-based) at which the noise's standard deviation sqrt(1 - alpha_bar_t) exceeds ``threshold``."""
    above = ((1 - alpha_bars_.double()).sqrt() > threshold).nonzero()
    if not len(above):
        raise ValueError(f"the noise never exceeds {threshold}")
    return int(above[0].item()) + 1


def level_steps(alpha_bars_: torch.Tensor) -> dict:
    """Where the noise outgrows the pixel levels: levels 0..16 become -1, -7/8, ..., 1, so they lie 2/16 apart."""
    spacing = 2 / (DIGIT_LEVELS - 1)  # the model's scaling (``Diffusion.as_input``): 0..16 -> [-1, 1]
    return {"spacing": spacing, "half": first_step_above(alpha_bars_, spacing / 2), "full": first_step_above(alpha_bars_, spacing)}


def level_prior(levels: torch.Tensor) -> torch.Tensor:
    """How often each pixel takes each of the 17 levels in ``levels`` (n, 64), add-one smoothed: (64, 17)."""
    counts = F.one_hot(levels.long(), DIGIT_LEVELS).sum(0).double() + 1  # (64, 17)
    return counts / counts.sum(1, keepdim=True)


def pixelwise_eps(model: Diffusion, x_t: torch.Tensor, t: int, prior: torch.Tensor) -> torch.Tensor:
    """The best guess of the noise for pixels that are independent, each with its level frequencies ``prior`` (64, 17).

    E[x_0 | x_t] per pixel is a weighted mean of the 17 levels; while the noise is much smaller than the
    levels' spacing, it is the nearest level, and the noise it implies is a sawtooth of x_t.
    """
    values = torch.linspace(-1, 1, DIGIT_LEVELS, dtype=torch.float64)  # (17,) the levels as the model sees them
    bar, one_minus = model.alpha_bars[t - 1].double(), model.one_minus_alpha_bars[t - 1].double()
    x = x_t.double()[:, :, None]  # (B, 64, 1)
    logits = prior.log()[None] - (x - bar.sqrt() * values) ** 2 / (2 * one_minus)  # (B, 64, 17)
    x0_hat = (logits.softmax(-1) * values).sum(-1)  # (B, 64)
    return ((x_t.double() - bar.sqrt() * x0_hat) / one_minus.sqrt()).float()


def _gaussian_kl(mean_q, var_q, mean_p, var_p) -> torch.Tensor:
    """KL(N(mean_q, var_q) || N(mean_p, var_p)), summed over the pixels: (B,)."""
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1).sum(1)


def _decoder(model: Diffusion, x0: torch.Tensor, x_1: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """L_0 = -log p(x_0 | x_1), the discretized decoder of ``Diffusion.nll_bound`` (variance beta_1): (B,)."""
    mean = model.reverse_step(x_1, 1, eps, None)
    half_bin = 1.0 / (DIGIT_LEVELS - 1)
    normal = torch.distributions.Normal(mean, model.betas[0].sqrt())
    upper = torch.where(x0 > 1 - half_bin, torch.ones_like(x0), normal.cdf(x0 + half_bin))
    lower = torch.where(x0 < -1 + half_bin, torch.zeros_like(x0), normal.cdf(x0 - half_bin))
    return -torch.log((upper - lower).clamp_min(1e-12)).sum(1)


@torch.no_grad()
def bound_terms(model: Diffusion, levels: torch.Tensor, generator: torch.Generator | None = None, prior: torch.Tensor | None = None) -> dict:
    """Every term of the bound on -log p(x_0), per image, under both reverse variances, and the noise errors.

    Draws x_t exactly as ``Diffusion.nll_bound`` does (t = T .. 2, then t = 1), so that with the same
    generator "beta" reproduces it. Columns of the (B, T) tensors are t = 1 .. T; the KL tensors' first
    column (t = 1) is 0, L_0 standing for it. With ``prior`` (see ``level_prior``) the same draws are
    also scored with ``pixelwise_eps`` in place of the network, under the variance beta_tilde.
    """
    x0 = model.as_input(levels.to(model.betas.device))  # (B, 64) in [-1, 1]
    n, steps = len(x0), model.steps
    variances = {choice: reverse_variances(model, choice) for choice in ("beta", "beta_tilde")}
    denoisers = ("net", "pixelwise") if prior is not None else ("net",)
    error = {d: torch.zeros(n, steps) for d in denoisers}  # ‖ε - ε̂‖² summed over the pixels
    kl = {"beta": torch.zeros(n, steps), "beta_tilde": torch.zeros(n, steps), "pixelwise": torch.zeros(n, steps)}
    decoder = {}
    for t in range(steps, 0, -1):
        noise = model._noise(x0.shape, generator)
        x_t = model.q_sample(x0, torch.full((n,), t), noise)
        guesses = {"net": model.net(x_t, torch.full((n,), t))}
        if prior is not None:
            guesses["pixelwise"] = pixelwise_eps(model, x_t, t, prior)
        for d in denoisers:
            error[d][:, t - 1] = ((noise - guesses[d]) ** 2).sum(1)
        if t == 1:
            decoder = {d: _decoder(model, x0, x_t, guesses[d]) for d in denoisers}
            continue
        target_var = model.one_minus_alpha_bars[t - 2] / model.one_minus_alpha_bars[t - 1] * model.betas[t - 1]  # β̃_t
        target = model.posterior_mean(x0, x_t, t)
        for choice, var in variances.items():
            kl[choice][:, t - 1] = _gaussian_kl(target, target_var, model.reverse_step(x_t, t, guesses["net"], None), var[t - 1])
        if prior is not None:
            kl["pixelwise"][:, t - 1] = _gaussian_kl(target, target_var, model.reverse_step(x_t, t, guesses["pixelwise"], None), variances["beta_tilde"][t - 1])
    prior_kl = _gaussian_kl(model.alpha_bars[-1].sqrt() * x0, model.one_minus_alpha_bars[-1], 0.0, 1.0)  # L_T
    return {"prior": prior_kl, "kl": kl, "decoder": decoder, "error": error}


def _bands(steps: int, half: int, full: int) -> list[tuple[int, int]]:
    """Ranges of t (inclusive): noise below half a level's spacing, below one spacing, up to 20% of T, the rest."""
    edges = [2, max(3, half), max(4, half + 1, full), max(5, full + 1, 1 + round(0.2 * steps)), steps + 1]
    edges = [min(e, steps + 1) for e in edges]
    return [(lo, hi - 1) for lo, hi in itertools.pairwise(edges) if hi > lo]


@result("diffusion-bound")
def bound_closer() -> dict:
    """The digits model's bound with sigma_t^2 = beta_t and = beta_tilde_t, term by term, and where the nats go.

    One draw of x_t per t for each of the 447 test images (seed BOUND_SEED); the validation images pick,
    for each t, whether the network or the pixel-wise denoiser guesses the noise better (the "hybrid").
    """
    model = run("digits").model.eval()
    splits = digits_splits()
    prior = level_prior(splits.train.x)
    test = bound_terms(model, splits.test.x, torch.Generator().manual_seed(BOUND_SEED), prior)
    val = bound_terms(model, splits.val.x, torch.Generator().manual_seed(BOUND_SEED), prior)
    steps = model.steps
    levels = level_steps(model.alpha_bars)
    # the hybrid: for each t, the denoiser with the lower mean noise error on the validation images
    use_pixelwise = val["error"]["pixelwise"].mean(0) < val["error"]["net"].mean(0)  # (T,)
    hybrid_kl = torch.where(use_pixelwise[None], test["kl"]["pixelwise"], test["kl"]["beta_tilde"])
    hybrid_decoder = test["decoder"]["pixelwise"] if use_pixelwise[0] else test["decoder"]["net"]
    prior_kl, decoder = test["prior"].mean().item(), test["decoder"]["net"].mean().item()
    per_t = {name: test["kl"][name].mean(0) for name in ("beta", "beta_tilde")} | {"hybrid": hybrid_kl.mean(0)}
    errors = {d: test["error"][d].mean(0) / model.config.data_dim for d in ("net", "pixelwise")}  # per pixel
    bounds = {name: {"total": prior_kl + per_t[name].sum().item() + decoder, "steps": per_t[name].sum().item()} for name in ("beta", "beta_tilde")}
    hybrid_decoder_nats = hybrid_decoder.mean().item()
    bounds["hybrid"] = {
        "total": prior_kl + per_t["hybrid"].sum().item() + hybrid_decoder_nats,
        "steps": per_t["hybrid"].sum().item(),
        "decoder": hybrid_decoder_nats,
        "pixelwise_steps": int(use_pixelwise.sum().item()),
        "pixelwise_last": int(use_pixelwise.nonzero().max().item()) + 1 if use_pixelwise.any() else 0,
    }
    bands = []
    for lo, hi in _bands(steps, levels["half"], levels["full"]):
        band = slice(lo - 1, hi)
        bands.append(
            {
                "from": lo,
                "to": hi,
                **{name: per_t[name][band].sum().item() for name in per_t},
                "error_net": errors["net"][band].mean().item(),
                "error_pixelwise": errors["pixelwise"][band].mean().item(),
            }
        )
    return {
        "images": len(splits.test.x),
        "steps": steps,
        "seed": BOUND_SEED,
        "prior": prior_kl,
        "decoder": decoder,
        "levels": levels,
        "paper_levels": level_steps(_paper_schedule().alpha_bars),
        **bounds,
        "tilde_minus_beta": bounds["beta_tilde"]["total"] - bounds["beta"]["total"],  # what sigma_t^2 = beta_tilde_t adds (negative: saves)
        "hybrid_gain": bounds["beta_tilde"]["total"] - bounds["hybrid"]["total"],
        "bands": bands,
        "error_first": {d: errors[d][0].item() for d in errors},  # t = 1
        "per_t": {**{name: v.tolist() for name, v in per_t.items()}, **{f"error_{d}": v.tolist() for d, v in errors.items()}},
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
    ax.plot(
        t,
        model.one_minus_alpha_bars.sqrt().numpy(),
        color=PALETTE[3],
        label=tr(lang, r"噪声系数 $\sqrt{1-\bar\alpha_t}$", r"noise scale $\sqrt{1-\bar\alpha_t}$"),
    )
    ax.set_xlabel("t")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def scatter(ax, points, dataset: str, color=PALETTE[0], title: str | None = None) -> None:
    """Points of a mixture over its circled modes, at the scale the diffusion and flow-matching chapters share."""
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
            scatter(axes[row, col], chain["trajectory"][str(t)], dataset, title=f"t = {t}" if row == 0 else None)
        scatter(axes[row, -1], chain["final"], dataset, PALETTE[2], title=tr(lang, "生成结果 $x_0$", "samples $x_0$") if row == 0 else None)
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
    scatter(axes[0], points["noise"]["final"], "grid", PALETTE[2], tr(lang, "grid：每步加新噪声", "grid: fresh noise every step"))
    scatter(axes[1], points["no_noise"]["final"], "grid", PALETTE[1], tr(lang, "grid：不加噪声", "grid: no fresh noise"))
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
    ax.plot(
        t,
        weights,
        color=PALETTE[0],
        label=tr(lang, r"变分下界：$\lambda_t = \beta_t / (2\alpha_t(1-\bar\alpha_t))$", r"the bound: $\lambda_t = \beta_t / (2\alpha_t(1-\bar\alpha_t))$"),
    )
    ax.plot(t, np.full_like(weights, weights.mean()), color=PALETTE[1], ls="--", label=tr(lang, "简化损失：每步同样的权重", "the simple loss: equal weights"))
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel(tr(lang, r"$\Vert\epsilon - \epsilon_\theta\Vert^2$ 的权重", r"weight of $\Vert\epsilon - \epsilon_\theta\Vert^2$"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@figure("diffusion/bound-per-step")
def bound_per_step(lang: str):
    """Where the bound's nats go: each step's KL under both reverse variances, and the noise errors, over t."""
    r = compute_result("diffusion-bound")
    t = np.arange(1, r["steps"] + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    ax = axes[0]
    for key, color, label in (
        ("beta", PALETTE[0], tr(lang, r"$\sigma_t^2=\beta_t$（采样器用的）", r"$\sigma_t^2=\beta_t$ (the sampler's)")),
        ("beta_tilde", PALETTE[1], r"$\sigma_t^2=\tilde\beta_t$"),
        ("hybrid", PALETTE[2], tr(lang, r"$\tilde\beta_t$，逐像素去噪器接管它更准的步", r"$\tilde\beta_t$, the pixel-wise denoiser where it guesses better")),
    ):
        ax.plot(t[1:], r["per_t"][key][1:], color=color, label=label, lw=1.2)
    ax.set_ylabel(tr(lang, "这一步的 KL（奈特/图）", "this step's KL (nats per image)"))
    axes[1].plot(t, r["per_t"]["error_net"], color=PALETTE[0], label=tr(lang, "网络 $\\epsilon_\\theta$", "the network $\\epsilon_\\theta$"))
    axes[1].plot(
        t, r["per_t"]["error_pixelwise"], color=PALETTE[3], label=tr(lang, "只知道 17 个取值的逐像素去噪器", "a pixel-wise denoiser that knows the 17 levels")
    )
    axes[1].set_ylabel(tr(lang, r"每像素 $\Vert\epsilon-\hat\epsilon\Vert^2$", r"$\Vert\epsilon-\hat\epsilon\Vert^2$ per pixel"))
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("t")
        for key, style in (("half", ":"), ("full", "--")):
            ax.axvline(r["levels"][key], color=PALETTE[7], ls=style, lw=0.8)
        ax.legend(fontsize=7)
    fig.suptitle(
        tr(
            lang,
            "灰线：噪声标准差超过取值间距的一半（点线）和一个间距（虚线）",
            "grey lines: the noise's standard deviation passes half the levels' spacing (dotted) and one spacing (dashed)",
        ),
        fontsize=8,
    )
    fig.tight_layout()
    return fig


@exported("diffusion/digits")
def denoiser() -> Export:
    """The digits model's noise predictor for the page's widget, eps_theta(x_t, t); the widget runs the reverse chain itself.

    ``meta`` carries the schedule and a reference: the chain without its noise term from one seeded x_T,
    run here by ``sample_chain``, which the widget's own chain must reproduce.
    """
    model = run("digits").model
    x_T = torch.randn((1, model.config.data_dim), generator=torch.Generator().manual_seed(SEED))  # what sample_chain draws first
    x_0, _ = model.sample_chain(1, torch.Generator().manual_seed(SEED), add_noise=False)
    meta = {
        "betas": model.betas.tolist(),
        "alpha_bars": model.alpha_bars.tolist(),
        "one_minus_alpha_bars": model.one_minus_alpha_bars.tolist(),  # taken in float64 before rounding, as the model does
        "reference": {"x_T": x_T[0].tolist(), "x_0": model.as_output(x_0)[0].tolist(), "tolerance": 1e-3},
    }
    example = {"x": x_T, "t": torch.tensor([float(model.steps)])}
    return Export(model, lambda diffusion, x, t: diffusion.net(x, t), example, ("eps",), meta)
