"""Figures of the BAGEL page (Deng et al. 2025, arXiv 2505.14683).

``bagel/architecture`` is a block diagram of the mixture-of-transformers:
text and ViT tokens go through the understanding expert, noisy VAE latents
through the generation expert, and in every layer all tokens meet in one
self-attention. ``bagel/flow-paths`` is computed with ``unimodel.flow``:
Gaussian noise carried to the 8-mode ring of the GAN chapter, once along
each noise-data pair's own straight line (the training targets) and once by
the exact average velocity field that a perfectly trained network would
learn (``flow.mixture_velocity``), both integrated with ``flow.euler_sample``.
"""

from __future__ import annotations

import torch
from matplotlib import pyplot as plt
from matplotlib.patches import FancyBboxPatch

from unimodel import flow
from unimodel.figures.diagram import Arrow, Box, draw
from unimodel.figures.registry import figure
from unimodel.figures.style import PALETTE, tr
from unimodel.mixtures import MIXTURES

SEED = 0
PATHS = 48  # noise points drawn in the flow figure
STEPS = 200  # Euler steps from t = 1 to t = 0


@figure("bagel/architecture")
def architecture(lang: str):
    """The mixture-of-transformers: two experts, one shared self-attention per layer, two heads and two losses."""
    und, gen, shared, head = PALETTE[0], PALETTE[1], PALETTE[4], PALETTE[2]
    boxes = [
        Box("text", tr(lang, "文本 token", "text tokens"), 1.6, 0.6, width=2.4, color=und),
        Box("vit", tr(lang, "图像 → ViT 编码器\n（看图用）", "image → ViT encoder\n(for understanding)"), 4.6, 0.6, width=2.8, height=0.9, color=und),
        Box("vae", tr(lang, "图像 → VAE 编码器\n加噪得到 $x_t$（画图用）", "image → VAE encoder\nnoised to $x_t$ (for generation)"), 8.8, 0.6, width=3.2, height=0.9, color=gen),
        Box("und", tr(lang, "理解专家\n自己的 QKV 投影和 FFN", "understanding expert\nits own QKV projections and FFN"), 3.1, 2.3, width=3.6, height=0.9, color=und),
        Box("gen", tr(lang, "生成专家\n自己的 QKV 投影和 FFN", "generation expert\nits own QKV projections and FFN"), 8.8, 2.3, width=3.6, height=0.9, color=gen),
        Box("attn", tr(lang, "共享的自注意力：所有 token 排成一个序列，互相可见", "shared self-attention: all tokens in one sequence see each other"), 5.95, 3.95, width=9.3, height=0.8, color=shared),
        Box("lm", tr(lang, "预测下一个文本 token\n交叉熵 $\\mathcal{L}_{\\mathrm{CE}}$", "next text token\ncross-entropy $\\mathcal{L}_{\\mathrm{CE}}$"), 3.1, 5.6, width=3.6, height=0.9, color=head),
        Box("velocity", tr(lang, "预测速度 $v_\\theta(x_t, t)$\n流匹配 $\\mathcal{L}_{\\mathrm{FM}}$ → VAE 解码器", "velocity $v_\\theta(x_t, t)$\nflow matching $\\mathcal{L}_{\\mathrm{FM}}$ → VAE decoder"), 8.8, 5.6, width=3.6, height=0.9, color=head),
    ]
    arrows = [
        Arrow("text", "und"), Arrow("vit", "und"), Arrow("vae", "gen"),
        Arrow("und", "attn"), Arrow("gen", "attn"),
        Arrow("attn", "lm"), Arrow("attn", "velocity"),
    ]
    fig = draw(boxes, arrows, width=12.3, height=6.3, scale=0.78)
    ax = fig.axes[0]
    # one Transformer layer: the two experts and the attention they share, repeated through the depth of the model
    ax.add_patch(FancyBboxPatch((1.0, 1.6), 11.1, 2.95, boxstyle="round,pad=0,rounding_size=0.15", facecolor="none", edgecolor=PALETTE[4], linestyle=":", linewidth=1.2))
    ax.text(12.0, 3.15, tr(lang, "× 每一层", "× every layer"), ha="right", va="center", fontsize=9, color=PALETTE[4])
    return fig


def _pairs(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise points (PATHS, 2) and, for each, a ring point it is paired with during training."""
    ring = MIXTURES["ring"]
    noise = torch.randn(PATHS, 2, generator=generator, dtype=torch.float64)
    x0, _ = ring.sample(PATHS, generator)
    return noise, x0.double()


@figure("bagel/flow-paths")
def flow_paths(lang: str):
    """Left: each training pair's straight path (its constant velocity). Right: paths of the exact average field from the same noise."""
    ring = MIXTURES["ring"]
    noise, x0 = _pairs(torch.Generator().manual_seed(SEED))
    per_pair = flow.euler_sample(lambda x, t: flow.velocity_target(x0, noise), noise, STEPS, trajectory=True)  # (STEPS + 1, PATHS, 2)
    means = ring.means.double()
    field = flow.euler_sample(lambda x, t: flow.mixture_velocity(x, t, means, ring.std), noise, STEPS, trajectory=True)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
    titles = (
        tr(lang, "训练时：每一对噪声和数据连一条直线\n（线会交叉）", "training: a straight line for each noise–data pair\n(the lines cross)"),
        tr(lang, "采样时：沿平均速度场积分\n（路径弯曲、互不交叉）", "sampling: integrate the average velocity field\n(curved paths that never cross)"),
    )
    for ax, paths, title in zip(axes, (per_pair, field), titles):
        for i in range(PATHS):
            ax.plot(paths[:, i, 0], paths[:, i, 1], color=PALETTE[0], lw=0.7, alpha=0.6)
        ax.scatter(paths[0, :, 0], paths[0, :, 1], s=10, color=PALETTE[7], zorder=3, label=tr(lang, "噪声 ε（t = 1）", "noise ε (t = 1)"))
        ax.scatter(paths[-1, :, 0], paths[-1, :, 1], s=14, color=PALETTE[3], zorder=4, label=tr(lang, "终点（t = 0）", "end point (t = 0)"))
        ax.scatter(means[:, 0], means[:, 1], s=90, facecolors="none", edgecolors=PALETTE[2], linewidths=1.2, zorder=5, label=tr(lang, "数据的 8 个模式", "the 8 modes of the data"))
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlim(-3.3, 3.3)
        ax.set_ylim(-3.3, 3.3)
        ax.set_axis_off()
    axes[1].legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig
