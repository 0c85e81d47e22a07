"""Figures and numbers of the VAE chapter (vae.md), its VQ-VAE section included.

Every VAE run below trains on the digits protocol (train [:1000], early
stopping on the validation ELBO with patience 20, Adamax lr 1e-3, batch 64,
seed 0) and is cached, so each one trains once per change of code or
settings.

The VQ-VAE tokenizer trains on the same 1000 training digits
(``train_defaults`` of ``recipes/vqvae.py``: Adam lr 2e-3, batch 64, at most
100 epochs, early stopping on the validation reconstruction NLL with patience
20, seed 0). It is the same run, with the same settings and seed, as the
tokenizer trained inside the unified model of ``models/unified.py``. A second
run switches the dead-code restart off, to show what it is for.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib import pyplot as plt

from unimodel import metrics
from unimodel.data import DIGIT_LEVELS, digits_splits
from unimodel.figures.registry import budget, compute_result, exported, figure, result, trains
from unimodel.figures.style import PALETTE, show_images, tr
from unimodel.models import vqvae
from unimodel.models.vae import reparameterize_uniform
from unimodel.recipes import vqvae as vqvae_recipe
from unimodel.runs import Run, RunSpec
from unimodel.training import TrainConfig
from unimodel.website.exports import Export

TRAIN = TrainConfig(epochs=budget(full=1000, quick=3), batch_size=64, lr=1e-3, optimizer="adamax", patience=20, seed=0)
RUNS = {
    "recommended": {},  # VAEConfig's defaults: discretized-logistic pixels, D = 16, 256 hidden units
    "reference": {"likelihood": "categorical"},  # the protocol's reference model: a free categorical per pixel
    "latent-2d": {"latent_dim": 2},
    "l2-only": {"likelihood": "gaussian", "kl_weight": 0.0},  # reconstruction (L2) loss alone
    "l2-with-kl": {"likelihood": "gaussian", "kl_weight": 1.0},  # the same model with the KL term
    "uniform": {"posterior": "uniform"},  # q(z|x) = U(c - w, c + w) instead of a Gaussian
}
IS_SAMPLES = budget(full=5000, quick=50)  # K for the importance-sampling estimate of log p(x)
SEED = 0


def spec(name: str) -> RunSpec:
    return RunSpec("vae", RUNS[name], TRAIN)


def run(name: str) -> Run:
    return spec(name).load()


@trains
def runs() -> list[RunSpec]:
    return [spec(name) for name in RUNS] + [vq_spec(name) for name in VQ_RUNS]


def _test() -> torch.Tensor:
    return digits_splits().test.x


@result("vae-nll")
def nll_table() -> dict:
    """Test NLL (nats per image) of the main runs, the training time, the epochs."""
    table = {}
    for name in ("recommended", "reference", "uniform"):
        r = run(name)
        scores = r.spec.evaluate(r.model, digits_splits(), k=IS_SAMPLES, seed=SEED)
        best = r.result.history[r.result.best_epoch - 1]
        table[name] = {
            **scores,
            "seconds": r.result.seconds,
            "best_epoch": r.result.best_epoch,
            "epochs": len(r.result.history),
            "train_at_best": -best["elbo"],  # training -ELBO (nats / image) at the best epoch
            "val_at_best": best["val"],
            "train_at_end": -r.result.history[-1]["elbo"],  # the same when early stopping ended the run
            "val_at_end": r.result.history[-1]["val"],
        }
    table["gain"] = table["reference"]["nll_is"] - table["recommended"]["nll_is"]  # what the likelihood alone buys
    return table


@figure("vae/reconstructions")
def reconstructions(lang: str):
    model = run("recommended").model
    x = _test()[:16]
    with torch.no_grad():
        mu, _ = model.encode(x)
        recon = model.decode_mean(mu).numpy()
    fig, axes = plt.subplots(2, 1, figsize=(7, 1.9))
    show_images(axes[0], x.numpy() / 16, rows=1, title=tr(lang, "测试集原图", "test images"))
    show_images(axes[1], recon, rows=1, title=tr(lang, "重建：解码 q(z|x) 的均值", "reconstructions: the decoded mean of q(z|x)"))
    return fig


@figure("vae/prior-samples")
def prior_samples(lang: str):
    model = run("recommended").model
    images = model.sample(64, torch.Generator().manual_seed(SEED)).numpy()
    fig, ax = plt.subplots(figsize=(3.6, 3.8))
    show_images(ax, images, rows=8, title=tr(lang, "从先验 N(0, I) 采样 z 后解码", "z ~ N(0, I), decoded"))
    return fig


@figure("vae/latent-space")
def latent_space(lang: str):
    model = run("latent-2d").model
    test = digits_splits().test
    with torch.no_grad():
        mu, _ = model.encode(test.x)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.3))
    for digit in range(10):
        points = mu[test.y == digit].numpy()
        left.scatter(points[:, 0], points[:, 1], s=9, color=PALETTE[digit], label=str(digit))
    left.legend(title=tr(lang, "数字", "digit"), fontsize=7, ncol=2, loc="best", markerscale=1.5)
    left.set_xlabel("$z_1$")
    left.set_ylabel("$z_2$")
    left.set_title(tr(lang, "测试图像的后验均值 μ(x)", "posterior means μ(x) of test images"))
    quantiles = torch.distributions.Normal(0, 1).icdf(torch.linspace(0.05, 0.95, 12))
    grid = torch.cartesian_prod(quantiles, quantiles.flip(0))[:, [1, 0]]  # rows go down in z_2
    with torch.no_grad():
        images = model.decode_mean(grid).numpy()
    show_images(right, images, rows=12, title=tr(lang, "解码流形：z 取 N(0,1) 的分位点", "decoded manifold: z on N(0,1) quantiles"))
    fig.tight_layout()
    return fig


@exported("vae/latent-2d")
def latent_2d_decoder() -> Export:
    """The 2-D VAE's decoder for the page's widget: z (1, 2) -> the mean image (1, 64), beside every test digit's posterior mean."""
    model = run("latent-2d").model
    test = digits_splits().test
    with torch.no_grad():
        mu, _ = model.encode(test.x)  # (447, 2)
    first = [int(torch.nonzero(test.y == digit)[0]) for digit in range(10)]  # the first test digit of each class
    meta = {
        "extent": max(3.0, math.ceil(float(mu.abs().max()) * 2) / 2),  # the pad shows [-extent, extent]^2: 3 prior sigmas, every mean
        "means": [[round(float(a), 3), round(float(b), 3)] for a, b in mu],
        "labels": test.y.tolist(),
        "anchors": [mu[i].tolist() for i in first],  # where the widget's interpolation starts and ends, per digit
    }
    return Export(model, lambda vae, z: vae.decode_mean(z), {"z": mu[first[3]][None]}, ("image",), meta)


@figure("vae/interpolation")
def interpolation(lang: str):
    model = run("recommended").model
    test = digits_splits().test
    pairs = [(0, 1), (3, 8), (4, 9), (7, 1)]  # (from digit, to digit)
    steps = torch.linspace(0, 1, 10)
    rows = []
    with torch.no_grad():
        for a, b in pairs:
            xa = test.x[test.y == a][:1]
            xb = test.x[test.y == b][:1]
            za, zb = model.encode(xa)[0], model.encode(xb)[0]  # posterior means, (1, D)
            z = (1 - steps[:, None]) * za + steps[:, None] * zb  # (10, D)
            rows.append(model.decode_mean(z).numpy())
    fig, ax = plt.subplots(figsize=(6, 2.8))
    show_images(ax, np.concatenate(rows), rows=len(pairs), title=tr(lang, "在 μ(x_a) 与 μ(x_b) 之间线性插值", "linear interpolation from μ(x_a) to μ(x_b)"))
    return fig


@figure("vae/training-curves")
def training_curves(lang: str):
    history = run("recommended").result.history
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    axes[0].plot(epochs, [-h["elbo"] for h in history], label=tr(lang, "训练集", "train"))
    axes[0].plot(epochs, [h["val"] for h in history], label=tr(lang, "验证集", "validation"))
    best = run("recommended").result.best_epoch
    axes[0].axvline(best, color="gray", ls=":", lw=1)
    axes[0].set_title(tr(lang, "−ELBO（奈特/图）", "−ELBO (nats / image)"))
    axes[0].legend()
    axes[1].plot(epochs, [-h["reconstruction"] for h in history], color=PALETTE[2])
    axes[1].set_title(tr(lang, "重建项 −E[log p(x|z)]", "reconstruction −E[log p(x|z)]"))
    axes[2].plot(epochs, [h["kl"] for h in history], color=PALETTE[3])
    axes[2].set_title("KL(q(z|x) ‖ p(z))")
    for ax in axes:
        ax.set_xlabel(tr(lang, "轮次", "epoch"))
    fig.tight_layout()
    return fig


def _posterior_stats(name: str) -> dict:
    model = run(name).model
    x = _test()
    with torch.no_grad():
        mu, log_var = model.encode(x)
        kl = model.kl(mu, log_var).mean().item()
        samples = model.sample(500, torch.Generator().manual_seed(SEED)).numpy()
    return {
        "kl": kl,  # nats per image
        "sigma": log_var.mul(0.5).exp().mean().item(),  # mean posterior std
        "mean_sq": mu.pow(2).mean().item(),  # E[mu_j^2]: 1 would match the prior's second moment with sigma -> 0
        **metrics.sample_scores(samples),
    }


@result("vae-l2")
def l2_only() -> dict:
    """Does the L2 loss alone make q(z|x) look like p(z)? Measure both models."""
    return {name: _posterior_stats(name) for name in ("l2-only", "l2-with-kl")} | {"judge_test_accuracy": metrics.judge_accuracy_on_test()}


@figure("vae/l2-only")
def l2_only_figure(lang: str):
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    labels = {"l2-only": tr(lang, "只用 L2 重建损失", "L2 loss only"), "l2-with-kl": tr(lang, "L2 + KL（VAE）", "L2 + KL (VAE)")}
    for name, color in (("l2-only", PALETTE[3]), ("l2-with-kl", PALETTE[0])):
        history = run(name).result.history
        axes[0].plot([h["epoch"] for h in history], [h["kl"] for h in history], color=color, label=labels[name])
    axes[0].set_yscale("log")
    axes[0].set_xlabel(tr(lang, "轮次", "epoch"))
    axes[0].set_title(tr(lang, "KL(q(z|x) ‖ p(z))，奈特/图", "KL(q(z|x) ‖ p(z)), nats / image"))
    axes[0].legend()
    for ax, name in zip(axes[1:], ("l2-only", "l2-with-kl")):
        images = run(name).model.sample(36, torch.Generator().manual_seed(SEED)).numpy()
        show_images(ax, images, rows=6, title=tr(lang, f"{labels[name]}：先验采样", f"{labels[name]}: prior samples"))
    fig.tight_layout()
    return fig


def _uniform_gradient_check() -> dict:
    """d/da E[z^2] for z ~ U(a, b): reparameterized Monte Carlo against the exact derivative."""
    a = torch.linspace(-2, 2, 9, requires_grad=True)
    b = a.detach() + 1.0
    center, log_half = (a + b) / 2, torch.log((b - a) / 2)
    u = torch.rand(200_000, 1, generator=torch.Generator().manual_seed(SEED))
    z = reparameterize_uniform(center, log_half, u)  # (N, 9)
    z.pow(2).mean(0).sum().backward()
    exact = (2 * a.detach() + b) / 3  # ∂_a (a² + ab + b²) / 3
    return {"a": a.detach().tolist(), "estimate": a.grad.tolist(), "exact": exact.tolist(), "max_error": (a.grad - exact).abs().max().item()}


@result("vae-uniform")
def uniform_posterior() -> dict:
    return {"gradient": _uniform_gradient_check()}


@figure("vae/uniform-posterior")
def uniform_figure(lang: str):
    check = _uniform_gradient_check()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    axes[0].plot(check["a"], check["exact"], color=PALETTE[0], label=tr(lang, "解析导数 (2a+b)/3", "exact (2a+b)/3"))
    axes[0].plot(check["a"], check["estimate"], "o", color=PALETTE[1], label=tr(lang, "重参数化 + 自动求导", "reparameterized + autograd"))
    axes[0].set_xlabel("a  (b = a + 1)")
    axes[0].set_title(tr(lang, "∂/∂a E[z²]，z = a + (b−a)u", "∂/∂a E[z²], z = a + (b−a)u"))
    axes[0].legend()
    for name, color in (("recommended", PALETTE[0]), ("uniform", PALETTE[1])):
        history = run(name).result.history
        label = tr(lang, "高斯后验" if name == "recommended" else "均匀后验", "Gaussian q(z|x)" if name == "recommended" else "uniform q(z|x)")
        axes[1].plot([h["epoch"] for h in history], [h["val"] for h in history], color=color, label=label)
    axes[1].set_xlabel(tr(lang, "轮次", "epoch"))
    axes[1].set_title(tr(lang, "验证集 −ELBO（奈特/图）", "validation −ELBO (nats / image)"))
    axes[1].set_ylim(top=130)
    axes[1].legend()
    fig.tight_layout()
    return fig


DIMENSIONS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
BOUNDARY = 0.05  # "near the boundary": within 5% of the half-width of the cube [-1, 1]^d


def _high_dimensions() -> dict:
    generator = torch.Generator().manual_seed(SEED)
    rows = []
    for d in DIMENSIONS:
        normal = torch.randn(20_000, d, generator=generator)
        cube = 2 * torch.rand(20_000, d, generator=generator) - 1
        radius = normal.norm(dim=1) / math.sqrt(d)
        rows.append(
            {
                "d": d,
                "normal_radius_mean": radius.mean().item(),  # ||z|| / sqrt(d)
                "normal_radius_std": radius.std().item(),
                "normal_within_1": (normal.norm(dim=1) < 1).float().mean().item(),  # share of mass in the unit ball
                "cube_near_boundary": (cube.abs().amax(dim=1) > 1 - BOUNDARY).float().mean().item(),
                "cube_near_boundary_exact": 1 - (1 - BOUNDARY) ** d,
            }
        )
    return {"rows": rows, "by_d": {str(r["d"]): r for r in rows}}


@result("vae-high-dimensions")
def high_dimensions() -> dict:
    return _high_dimensions()


@figure("vae/high-dimensions")
def high_dimensions_figure(lang: str):
    rows = _high_dimensions()["rows"]
    d = [r["d"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].errorbar(d, [r["normal_radius_mean"] for r in rows], yerr=[r["normal_radius_std"] for r in rows], marker="o", capsize=3)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel(tr(lang, "维度 d", "dimension d"))
    axes[0].set_title(tr(lang, "N(0, I) 样本的 ‖z‖/√d（均值 ± 标准差）", "‖z‖/√d of N(0, I) samples (mean ± std)"))
    axes[1].plot(
        d, [r["cube_near_boundary"] for r in rows], "o-", label=tr(lang, "均匀立方体：某坐标距边界 < 5%", "uniform cube: a coordinate within 5% of a face")
    )
    axes[1].plot(d, [r["normal_within_1"] for r in rows], "s-", label=tr(lang, "标准正态：落在单位球内", "standard normal: inside the unit ball"))
    axes[1].set_xscale("log", base=2)
    axes[1].set_xlabel(tr(lang, "维度 d", "dimension d"))
    axes[1].set_title(tr(lang, "概率质量的位置", "where the probability mass is"))
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the VQ-VAE section

VQ_DEFAULTS = vqvae_recipe.train_defaults("digits")
VQ_TRAIN = TrainConfig(**{**VQ_DEFAULTS, "epochs": budget(full=VQ_DEFAULTS["epochs"], quick=2), "seed": SEED, "device": "cpu"})
VQ_RUNS = {"tokenizer": {}, "no-restart": {"restart_after": 0.0}}
VQ_SHOWN = 10  # test digits in the reconstruction figure


def vq_spec(name: str = "tokenizer") -> RunSpec:
    return RunSpec("vqvae", VQ_RUNS[name], VQ_TRAIN)


def vq_run(name: str = "tokenizer") -> Run:
    return vq_spec(name).load()


@result("vae-vqvae-scores")
def vq_scores() -> dict:
    """Test scores of the tokenizer and of the same model without dead-code restarts, with their training time."""
    splits = digits_splits()
    table = {}
    for name in VQ_RUNS:
        r = vq_run(name)
        table[name] = {
            **r.spec.evaluate(r.model, splits),
            "parameters": sum(p.numel() for p in r.model.parameters()),
            "epochs": len(r.result.history),
            "best_epoch": r.result.best_epoch,
            "seconds": r.result.seconds,
        }
    c = vq_run().model.config
    table["config"] = {"codebook_size": c.codebook_size, "grid": c.grid, "codes": c.codes, "code_dim": c.code_dim}
    table["pixel_bits"] = 64 * float(np.log2(DIGIT_LEVELS))  # an image stored pixel by pixel: 64 values of 17 levels
    table["compression"] = table["pixel_bits"] / table["tokenizer"]["bits_per_image"]
    return table


@figure("vae/vqvae-reconstructions")
def vq_reconstructions(lang: str):
    """Test digits, their 4x4 grid of codes written out, and the digits the decoder rebuilds from those codes."""
    model = vq_run().model
    test = digits_splits().test
    x = torch.stack([test.x[test.y == d][0] for d in range(VQ_SHOWN)])  # the first test image of each digit
    codes = model.encode(x)  # (10, 16)
    rebuilt = vqvae.reconstruct(model, x).numpy()
    G = model.config.grid
    fig, axes = plt.subplots(3, VQ_SHOWN, figsize=(VQ_SHOWN * 0.95, 3.4))
    for i in range(VQ_SHOWN):
        show_images(axes[0, i], x[i : i + 1].numpy() / (DIGIT_LEVELS - 1), rows=1)
        grid = codes[i].reshape(G, G).numpy()
        ax = axes[1, i]
        ax.imshow(np.zeros((G, G)), cmap="Greys", vmin=0, vmax=1)
        for r in range(G):
            for col in range(G):
                ax.text(col, r, str(grid[r, col]), ha="center", va="center", fontsize=6.5, color=PALETTE[0])
        ax.set_xticks(np.arange(-0.5, G), minor=True)
        ax.set_yticks(np.arange(-0.5, G), minor=True)
        ax.grid(which="minor", color="#bbbbbb", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        show_images(axes[2, i], rebuilt[i : i + 1], rows=1)
    for ax, label in zip(axes[:, 0], (tr(lang, "原图", "image"), tr(lang, "码字", "codes"), tr(lang, "重建", "rebuilt"))):
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig


@figure("vae/vqvae-codebook")
def vq_codebook(lang: str):
    """What each code draws: the decoder's image of a grid filled with that one code, and how often test digits use it."""
    model = vq_run().model
    K, N = model.config.codebook_size, model.config.codes
    tiles = model.decode(torch.arange(K)[:, None].repeat(1, N)).numpy()  # (K, 64)
    counts = {name: torch.bincount(vq_run(name).model.encode(digits_splits().test.x).flatten(), minlength=K).numpy() for name in VQ_RUNS}
    fig = plt.figure(figsize=(9, 3.3))
    left = fig.add_axes([0.0, 0.05, 0.42, 0.85])
    show_images(left, tiles, rows=4, title=tr(lang, "每个码字单独铺满 4×4 网格时解码出的图", "each code alone, filling the 4x4 grid, decoded"))
    right = fig.add_axes([0.5, 0.18, 0.48, 0.68])
    measured = compute_result("vae-vqvae-scores")
    for offset, (name, color) in zip((-0.2, 0.2), (("tokenizer", PALETTE[0]), ("no-restart", PALETTE[3]))):
        label = tr(
            lang,
            f"{'重启死码字' if name == 'tokenizer' else '不重启'}：用到 {measured[name]['codes_used']} 个",
            f"{'restarting dead codes' if name == 'tokenizer' else 'no restarts'}: {measured[name]['codes_used']} used",
        )
        right.bar(np.arange(K) + offset, np.sort(counts[name])[::-1], width=0.4, color=color, label=label)
    right.set_xlabel(tr(lang, "码字（按使用次数排序）", "codes, most used first"))
    right.set_ylabel(tr(lang, "测试集中出现的次数", "uses in the test digits"))
    right.legend(fontsize=8, frameon=False)
    return fig
