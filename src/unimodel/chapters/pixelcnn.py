"""Figures and numbers of the PixelCNN chapter.

The model is ``PixelCNNConfig()``'s defaults, trained with
``recipes.pixelcnn.train_defaults`` on the digits protocol (train [:1000],
early stopping on the exact validation NLL with patience 20, seed 0), the
same split and test set as the VAE chapter.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import numpy as np
import torch
from matplotlib import pyplot as plt

from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE, digits_splits
from unimodel.figures.registry import budget, compute_result, exported, figure, result, trains
from unimodel.figures.style import PALETTE, show_images, tr
from unimodel.models.pixelcnn import PixelCNN, PixelCNNConfig, causal_mask
from unimodel.recipes.pixelcnn import nll, train_defaults
from unimodel.runs import Run, RunSpec
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig
from unimodel.website.exports import Export

SEED = 0
TRAIN = TrainConfig(**{**train_defaults("digits"), "epochs": budget(full=train_defaults("digits")["epochs"], quick=2), "seed": SEED, "device": "cpu"})
REFERENCE_ARM = 86.46  # nats: the autoregressive model of the digits protocol's code (4 causal 1-D convolutions), REFERENCES.md
SAMPLES = 64


SPEC = RunSpec("pixelcnn", asdict(PixelCNNConfig()), TRAIN)


def run() -> Run:
    return SPEC.load()


@trains
def runs() -> list[RunSpec]:
    return [SPEC]


@result("pixelcnn-nll", uses=("vae-nll",))  # the page quotes the VAE's bounds
def nll_table() -> dict:
    """The exact test NLL beside the VAE chapter's bounds, the training time, and what sampling costs."""
    r = run()
    splits = digits_splits()
    best = r.result.history[r.result.best_epoch - 1]
    model = r.model
    started = time.perf_counter()
    model.sample(SAMPLES, torch.Generator().manual_seed(SEED))
    sample_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with torch.no_grad():
        model.logits(splits.test.x[:SAMPLES])  # one pass: what scoring 64 images costs
    pass_seconds = time.perf_counter() - started
    vae_bounds = compute_result("vae-nll")["recommended"]
    test = nll(model, splits.test.x)
    return {
        "test": test,
        "val_at_best": best["val"],
        "train_at_best": best["nll"],
        "best_epoch": r.result.best_epoch,
        "epochs": len(r.result.history),
        "seconds": r.result.seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
        "uniform": DIGIT_SIDE * DIGIT_SIDE * math.log(DIGIT_LEVELS),  # every pixel uniform over 17 levels
        "reference_arm": REFERENCE_ARM,
        "vae_elbo": vae_bounds["nll_elbo"],
        "vae_is": vae_bounds["nll_is"],
        "gain_over_vae": vae_bounds["nll_is"] - test,
        "ms_per_sample": 1000 * sample_seconds / SAMPLES,
        "ms_per_scored_image": 1000 * pass_seconds / SAMPLES,
        "passes": DIGIT_SIDE * DIGIT_SIDE,
    }


def _dependence(model: PixelCNN, pixel: tuple[int, int]) -> np.ndarray:
    """Which input pixels the logits at ``pixel`` depend on: the gradient's magnitude, (H, W)."""
    model.eval()
    x = (torch.rand(1, DIGIT_SIDE * DIGIT_SIDE, generator=torch.Generator().manual_seed(SEED)) * (DIGIT_LEVELS - 1)).requires_grad_()
    model.logits(x)[0, :, pixel[0], pixel[1]].sum().backward()  # real-valued levels: the gradient reaches the input
    return x.grad.abs().reshape(DIGIT_SIDE, DIGIT_SIDE).numpy()


PIXEL = (7, 0)  # the first pixel of the last row: the pixel whose blind spot is largest


def _fresh(layers: int) -> PixelCNN:
    """An untrained network: which pixels an output depends on is a matter of the masks, not of the weights."""
    set_seed(SEED)
    return PixelCNN(PixelCNNConfig(layers=layers))


@result("pixelcnn-receptive-field")
def receptive_field() -> dict:
    """How many of the pixels before PIXEL its output depends on, through the whole network."""
    depends = _dependence(_fresh(PixelCNNConfig().layers), PIXEL) > 0
    earlier = np.arange(DIGIT_SIDE * DIGIT_SIDE).reshape(DIGIT_SIDE, DIGIT_SIDE) < PIXEL[0] * DIGIT_SIDE + PIXEL[1]
    return {
        "pixel": list(PIXEL),
        "earlier": int(earlier.sum()),
        "seen": int((depends & earlier).sum()),
        "blind": int((~depends & earlier).sum()),
        "later_seen": int((depends & ~earlier).sum()),
    }


@exported("pixelcnn/pixelcnn")
def sampler() -> Export:
    """The chapter's PixelCNN for the page's widget: pixel levels x (1, 64) -> p(x_i = k | x_<i) for every pixel, (1, L, H, W).

    ``meta["sees"][i]``: the input pixels the output at pixel i depends on through the whole network (found by the
    gradient, as in the masks figure), for every i.
    """
    fresh = _fresh(PixelCNNConfig().layers)
    pixels = [divmod(i, DIGIT_SIDE) for i in range(DIGIT_SIDE * DIGIT_SIDE)]
    sees = [np.flatnonzero(_dependence(fresh, pixel) > 0).tolist() for pixel in pixels]
    example = digits_splits().test.x[:1].float()
    return Export(run().model, lambda pixelcnn, x: pixelcnn.logits(x).softmax(1), {"x": example}, ("probabilities",), {"sees": sees, "levels": DIGIT_LEVELS})


@figure("pixelcnn/masks")
def masks(lang: str):
    """The two masks, and which pixels one output depends on, through one residual block and through all of them."""
    config = PixelCNNConfig()
    panels = [
        (
            causal_mask(config.first_kernel, "A").numpy(),
            tr(lang, f"掩码 A（{config.first_kernel}×{config.first_kernel}，第一层）", f"mask A ({config.first_kernel}×{config.first_kernel}, first layer)"),
        ),
        (
            causal_mask(config.kernel, "B").numpy(),
            tr(lang, f"掩码 B（{config.kernel}×{config.kernel}，之后各层）", f"mask B ({config.kernel}×{config.kernel}, later layers)"),
        ),
        (_dependence(_fresh(1), PIXEL), tr(lang, f"像素 {PIXEL} 依赖的输入：1 个残差块", f"inputs pixel {PIXEL} depends on: 1 residual block")),
        (_dependence(_fresh(config.layers), PIXEL), tr(lang, f"{config.layers} 个残差块（整个网络）", f"{config.layers} residual blocks (the whole network)")),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    for ax, (values, title) in zip(axes, panels):
        ax.imshow(values > 0, cmap="Blues", vmin=0, vmax=1.4, interpolation="nearest")
        row, col = PIXEL if values.shape[0] == DIGIT_SIDE else (values.shape[0] // 2,) * 2  # the output's own position
        ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=PALETTE[3], linewidth=2))
        ax.set_xticks(np.arange(values.shape[1] + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(values.shape[0] + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="white", linewidth=1)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


@figure("pixelcnn/samples")
def samples(lang: str):
    images = run().model.sample(SAMPLES, torch.Generator().manual_seed(SEED)).numpy()
    real = digits_splits().test.x[:SAMPLES].numpy() / (DIGIT_LEVELS - 1)
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.9))
    show_images(axes[0], real, rows=8, title=tr(lang, "真实的测试集数字", "real test digits"))
    show_images(axes[1], images, rows=8, title=tr(lang, "PixelCNN 逐像素采样的数字", "digits sampled pixel by pixel"))
    return fig


@figure("pixelcnn/nll")
def nll_figure(lang: str):
    """Test NLL beside the bounds and baselines, and the training curves."""
    r = compute_result("pixelcnn-nll")
    history = run().result.history
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.3, 1]})
    bars = [
        (tr(lang, "均匀分布", "uniform"), r["uniform"], PALETTE[7]),
        (tr(lang, "VAE：−ELBO", "VAE: −ELBO"), r["vae_elbo"], PALETTE[1]),
        (tr(lang, "VAE：重要性采样", "VAE: importance sampling"), r["vae_is"], PALETTE[1]),
        (tr(lang, "参考 ARM（1-D 卷积）", "reference ARM (1-D convs)"), r["reference_arm"], PALETTE[4]),
        ("PixelCNN", r["test"], PALETTE[0]),
    ]
    names, values, colors = zip(*bars)
    left.barh(names, values, color=colors)
    for i, value in enumerate(values):
        left.text(value + 1, i, f"{value:.1f}", va="center", fontsize=8)
    left.set_xlabel(tr(lang, "测试集负对数似然（奈特/图）", "test NLL (nats per image)"))
    left.invert_yaxis()
    epochs = [h["epoch"] for h in history]
    right.plot(epochs, [h["nll"] for h in history], color=PALETTE[0], label=tr(lang, "训练集", "train"))
    right.plot(epochs, [h["val"] for h in history], color=PALETTE[1], label=tr(lang, "验证集", "validation"))
    right.axvline(r["best_epoch"], color="gray", ls=":", lw=1)
    right.set_xlabel(tr(lang, "轮次", "epoch"))
    right.set_ylabel(tr(lang, "奈特/图", "nats per image"))
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
