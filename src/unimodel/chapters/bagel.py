"""Figures of the BAGEL page (Deng et al. 2025, arXiv 2505.14683).

``bagel/architecture`` is a block diagram of the mixture-of-transformers
beside the attention mask it uses. Left: text and ViT tokens go through the
understanding expert, VAE latents through the generation expert, and in
every layer all tokens meet in one self-attention. Right: that attention is
not all-to-all but BAGEL's generalized causal attention, drawn from
``generalized_causal_mask`` on a short example sequence: causal over text,
bidirectional within one image, and a later token sees an image's clean VAE
and ViT tokens but never its noised VAE tokens. The rule is the one of the
official code (``prepare_attention_mask_per_sample`` in ``data/data_utils.py``
of ByteDance-Seed/Bagel, split modes ``causal`` / ``full`` / ``noise``).
``bagel/flow-paths`` is computed with ``unimodel.experiments.flow``:
Gaussian noise carried to the 8-mode ring of the GAN chapter, once along
each noise-data pair's own straight line (the training targets) and once by
the exact average velocity field that a perfectly trained network would
learn (``flow.mixture_velocity``), both integrated with ``flow.euler_sample``.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.colors import to_rgba
from matplotlib.patches import FancyBboxPatch, Patch

from unimodel.experiments import flow
from unimodel.figures.diagram import Arrow, Box, draw
from unimodel.figures.registry import figure
from unimodel.figures.style import PALETTE, tr
from unimodel.mixtures import MIXTURES

SEED = 0
PATHS = 48  # noise points drawn in the flow figure
STEPS = 200  # Euler steps from t = 1 to t = 0

MODES = ("causal", "full", "noise")  # how the tokens of one split attend to each other (the official code's names)


def generalized_causal_mask(splits) -> np.ndarray:
    """(L, L) booleans, True where the query token of the row may attend to the key token of the column.

    ``splits`` is a list of ``(length, mode)`` in sequence order. Every token
    sees all tokens of earlier splits; inside a split, ``causal`` (text) sees
    itself and earlier tokens, ``full`` (a clean image: VAE or ViT tokens) and
    ``noise`` (the noised VAE tokens of an image being generated) see the
    whole split. Finally no token outside a ``noise`` split sees it: only the
    flow-matching loss reads the noised latents.
    """
    for length, mode in splits:
        if mode not in MODES or length < 1:
            raise ValueError(f"a split is (length >= 1, one of {MODES}), got {(length, mode)!r}")
    size = sum(length for length, _ in splits)
    mask = np.zeros((size, size), dtype=bool)
    start = 0
    for length, mode in splits:
        end = start + length
        mask[start:end, :start] = True  # every earlier split
        block = np.tril(np.ones((length, length), dtype=bool)) if mode == "causal" else np.ones((length, length), dtype=bool)
        mask[start:end, start:end] = block
        start = end
    start = 0
    for length, mode in splits:
        end = start + length
        if mode == "noise":
            mask[:, start:end] = False  # hidden from everyone else ...
            mask[start:end, start:end] = True  # ... but bidirectional among themselves
        start = end
    return mask


# the example sequence of the figure: a prompt, the image it asks for (noised, then clean), and text that follows
EXAMPLE = (
    ("text", 3, "causal"),
    ("noised", 4, "noise"),
    ("clean", 4, "full"),
    ("vit", 3, "full"),
    ("text", 3, "causal"),
)
KIND_COLOR = {"text": PALETTE[7], "noised": PALETTE[3], "clean": PALETTE[1], "vit": PALETTE[0]}


def _kind_label(lang: str, kind: str) -> str:
    return {
        "text": tr(lang, "文本（因果）", "text (causal)"),
        "noised": tr(lang, "加噪的 VAE token（要生成的图）", "noised VAE tokens (image being generated)"),
        "clean": tr(lang, "干净的 VAE token（同一张图）", "clean VAE tokens (the same image)"),
        "vit": tr(lang, "ViT token（同一张图）", "ViT tokens (the same image)"),
    }[kind]


def _draw_mask(ax, lang: str) -> None:
    """The example's mask: a filled cell is an allowed (query, key) pair, coloured by the key's kind."""
    mask = generalized_causal_mask([(length, mode) for _, length, mode in EXAMPLE])
    kinds = [kind for kind, length, _ in EXAMPLE for _ in range(length)]
    size = len(kinds)
    image = np.ones((size, size, 4))
    for key, kind in enumerate(kinds):
        image[mask[:, key], key] = to_rgba(KIND_COLOR[kind], 0.85)
    ax.imshow(image, interpolation="nearest")
    edges = np.cumsum([length for _, length, _ in EXAMPLE])[:-1] - 0.5
    for edge in edges:
        ax.axhline(edge, color="#444444", lw=0.8)
        ax.axvline(edge, color="#444444", lw=0.8)
    ax.set_xticks(np.arange(size) + 0.5, minor=True)
    ax.set_yticks(np.arange(size) + 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=0.6)
    ax.tick_params(which="both", length=0)
    centres, start = [], 0
    for _, length, _ in EXAMPLE:
        centres.append(start + (length - 1) / 2)
        start += length
    short = {"text": tr(lang, "文本", "text"), "noised": tr(lang, "加噪", "noised"), "clean": tr(lang, "干净", "clean"), "vit": "ViT"}
    names = [short[kind] for kind, _, _ in EXAMPLE]
    ax.set_xticks(centres, names, fontsize=8)
    ax.set_yticks(centres, names, fontsize=8)
    ax.set_xlabel(tr(lang, "被看的 token（key）", "token attended to (key)"), fontsize=8.5)
    ax.set_ylabel(tr(lang, "在看的 token（query）", "token attending (query)"), fontsize=8.5)
    ax.set_title(tr(lang, "广义因果注意力的掩码（涂色 = 看得见）", "generalized causal attention mask (filled = visible)"), fontsize=9.5)
    handles = [Patch(color=KIND_COLOR[kind], alpha=0.85, label=_kind_label(lang, kind)) for kind in ("text", "noised", "clean", "vit")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7.5, frameon=False, ncol=1)


@figure("bagel/architecture")
def architecture(lang: str):
    """Left: the mixture-of-transformers, two experts and one shared, masked self-attention per layer. Right: the mask on an example sequence."""
    und, gen, shared, head = PALETTE[0], PALETTE[1], PALETTE[4], PALETTE[2]
    boxes = [
        Box("text", tr(lang, "文本 token", "text tokens"), 1.6, 0.6, width=2.4, color=und),
        Box(
            "vit",
            tr(lang, "图像 → SigLIP2 ViT\n+ MLP 连接器（看图用）", "image → SigLIP2 ViT\n+ MLP connector (to read)"),
            4.6,
            0.6,
            width=2.9,
            height=0.9,
            color=und,
        ),
        Box(
            "vae",
            tr(
                lang,
                "图像 → FLUX 的 VAE 编码器（冻结）\n干净的潜变量，或加噪的 $x_t$（要生成的图）",
                "image → FLUX VAE encoder (frozen)\nclean latents, or noised $x_t$ (image to generate)",
            ),
            9.0,
            0.6,
            width=4.4,
            height=0.9,
            color=gen,
        ),
        Box("und", tr(lang, "理解专家\n自己的一整套权重", "understanding expert\nits own full set of weights"), 3.1, 2.3, width=3.6, height=0.9, color=und),
        Box("gen", tr(lang, "生成专家\n自己的一整套权重", "generation expert\nits own full set of weights"), 8.8, 2.3, width=3.6, height=0.9, color=gen),
        Box(
            "attn",
            tr(
                lang,
                "共享的自注意力：所有 token 排成一个序列，按右图的掩码互相可见",
                "shared self-attention: all tokens in one sequence, visible as the mask on the right allows",
            ),
            5.95,
            3.95,
            width=9.3,
            height=0.8,
            color=shared,
        ),
        Box(
            "lm",
            tr(lang, "预测下一个文本 token\n交叉熵 $\\mathcal{L}_{\\mathrm{CE}}$", "next text token\ncross-entropy $\\mathcal{L}_{\\mathrm{CE}}$"),
            3.1,
            5.6,
            width=3.6,
            height=0.9,
            color=head,
        ),
        Box(
            "velocity",
            tr(
                lang,
                "预测速度 $v_\\theta(x_t, t)$\n流匹配 $\\mathcal{L}_{\\mathrm{FM}}$ → VAE 解码器",
                "velocity $v_\\theta(x_t, t)$\nflow matching $\\mathcal{L}_{\\mathrm{FM}}$ → VAE decoder",
            ),
            8.8,
            5.6,
            width=3.6,
            height=0.9,
            color=head,
        ),
    ]
    arrows = [
        Arrow("text", "und"),
        Arrow("vit", "und"),
        Arrow("vae", "gen"),
        Arrow("und", "attn"),
        Arrow("gen", "attn"),
        Arrow("attn", "lm"),
        Arrow("attn", "velocity"),
    ]
    left_width, mask_width = 12.3, 7.2
    fig = draw(boxes, arrows, width=left_width + mask_width, height=6.3, scale=0.78)
    ax = fig.axes[0]
    # one Transformer layer: the two experts and the attention they share, repeated through the depth of the model
    ax.add_patch(
        FancyBboxPatch((1.0, 1.6), 11.1, 2.95, boxstyle="round,pad=0,rounding_size=0.15", facecolor="none", edgecolor=PALETTE[4], linestyle=":", linewidth=1.2)
    )
    ax.text(12.0, 3.15, tr(lang, "× 每一层", "× every layer"), ha="right", va="center", fontsize=9, color=PALETTE[4])
    total = left_width + mask_width
    mask_ax = fig.add_axes(((left_width + 1.5) / total, 0.36, (mask_width - 2.0) / total, 0.56))
    _draw_mask(mask_ax, lang)
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
        ax.scatter(
            means[:, 0],
            means[:, 1],
            s=90,
            facecolors="none",
            edgecolors=PALETTE[2],
            linewidths=1.2,
            zorder=5,
            label=tr(lang, "数据的 8 个模式", "the 8 modes of the data"),
        )
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlim(-3.3, 3.3)
        ax.set_ylim(-3.3, 3.3)
        ax.set_axis_off()
    axes[1].legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig
