"""Figures of the unified-models overview page.

``unified/taxonomy`` is the survey's grid (Zhang et al. 2025, arXiv
2505.02567): rows are the backbone (diffusion, autoregressive MLLM,
AR + diffusion), columns the way images are encoded (pixel, semantic,
learnable query, hybrid), and each cell names the models of these pages that
the survey's companion list (AIDC-AI/Awesome-Unified-Multimodal-Models)
files there. ``unified/timeline`` places the same models by the month of
their arXiv id (YYMM.NNNNN), coloured by backbone.
"""

from __future__ import annotations

from matplotlib import pyplot as plt
from matplotlib.patches import FancyBboxPatch

from unimodel.figures.registry import figure
from unimodel.figures.style import PALETTE, tr

BACKBONES = ("diffusion", "ar", "ar-diffusion")  # rows of the grid, top to bottom
ENCODINGS = ("pixel", "semantic", "query", "hybrid")  # columns, left to right
BACKBONE_COLOR = {"diffusion": PALETTE[7], "ar": PALETTE[0], "ar-diffusion": PALETTE[1]}

# name, arXiv id, backbone, image encoding: where the survey's list files each model of these pages
MODELS = (
    ("Chameleon", "2405.09818", "ar", "pixel"),
    ("Emu3", "2409.18869", "ar", "pixel"),
    ("Transfusion", "2408.11039", "ar-diffusion", "pixel"),
    ("Show-o", "2408.12528", "ar-diffusion", "pixel"),
    ("Janus", "2410.13848", "ar", "hybrid"),
    ("Janus-Pro", "2501.17811", "ar", "hybrid"),
    ("MetaQueries", "2504.06256", "ar", "query"),
    ("BLIP3-o", "2505.09568", "ar", "query"),
    ("BAGEL", "2505.14683", "ar-diffusion", "hybrid"),
    ("UniWorld-V1", "2506.03147", "ar", "semantic"),
)


def _backbone_label(lang: str, key: str) -> str:
    return {
        "diffusion": tr(lang, "扩散模型", "Diffusion"),
        "ar": tr(lang, "自回归\n（MLLM）", "Autoregressive\n(MLLM)"),
        "ar-diffusion": tr(lang, "自回归 + 扩散\n（MLLM）", "AR + diffusion\n(MLLM)"),
    }[key]


def _encoding_label(lang: str, key: str) -> str:
    return {
        "pixel": tr(lang, "像素编码\n（VQ / VAE）", "Pixel\n(VQ / VAE)"),
        "semantic": tr(lang, "语义编码\n（CLIP / SigLIP）", "Semantic\n(CLIP / SigLIP)"),
        "query": tr(lang, "可学习查询", "Learnable\nquery"),
        "hybrid": tr(lang, "混合编码\n（语义 + 像素）", "Hybrid\n(semantic + pixel)"),
    }[key]


@figure("unified/taxonomy")
def taxonomy(lang: str):
    """The backbone x image-encoding grid, each cell listing its models with their arXiv ids."""
    cell_w, cell_h, head_w, head_h = 2.6, 1.35, 1.9, 0.9
    width, height = head_w + cell_w * len(ENCODINGS), head_h + cell_h * len(BACKBONES)
    fig, ax = plt.subplots(figsize=(width * 0.95, height * 0.95))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    for c, encoding in enumerate(ENCODINGS):
        ax.text(head_w + (c + 0.5) * cell_w, height - head_h / 2, _encoding_label(lang, encoding), ha="center", va="center", fontsize=9.5, weight="bold")
    for r, backbone in enumerate(BACKBONES):
        top = height - head_h - r * cell_h
        ax.text(
            head_w / 2, top - cell_h / 2, _backbone_label(lang, backbone), ha="center", va="center", fontsize=9.5, weight="bold", color=BACKBONE_COLOR[backbone]
        )
        for c, encoding in enumerate(ENCODINGS):
            left = head_w + c * cell_w
            names = [f"{name}  ({arxiv})" for name, arxiv, b, e in MODELS if (b, e) == (backbone, encoding)]
            color = BACKBONE_COLOR[backbone]
            ax.add_patch(
                FancyBboxPatch(
                    (left + 0.06, top - cell_h + 0.06),
                    cell_w - 0.12,
                    cell_h - 0.12,
                    boxstyle="round,pad=0,rounding_size=0.08",
                    facecolor=color,
                    alpha=0.16 if names else 0.04,
                    edgecolor=color,
                    linewidth=1.0,
                )
            )
            text = "\n".join(names) if names else tr(lang, "（本站未细讲）", "(not covered here)")
            ax.text(
                left + cell_w / 2,
                top - cell_h / 2,
                text,
                ha="center",
                va="center",
                fontsize=8.5 if names else 8,
                color="black" if names else "#888888",
                linespacing=1.6,
            )
    ax.text(
        width / 2,
        -0.05,
        tr(
            lang,
            "行：骨干网络；列：图像怎样编码。括号里是 arXiv 编号。分类依据综述 arXiv 2505.02567",
            "Rows: the backbone; columns: how images are encoded. arXiv ids in brackets. Classification after the survey arXiv 2505.02567",
        ),
        ha="center",
        va="top",
        fontsize=8,
        color="#555555",
    )
    fig.tight_layout()
    return fig


def _month(arxiv: str) -> float:
    """The arXiv id's month as a decimal year: 2405.09818 -> 2024 + 4/12."""
    yymm = arxiv.split(".")[0]
    return 2000 + int(yymm[:2]) + (int(yymm[2:]) - 1) / 12


@figure("unified/timeline")
def timeline(lang: str):
    """The models by the month of their arXiv id, coloured by backbone; labels that would touch are lifted to a higher row."""
    fig, ax = plt.subplots(figsize=(9.5, 3.4))
    last_on_row: list[float] = []  # x of the last label on each row
    gap = 0.15  # years between two labels on one row
    for name, arxiv, backbone, _ in sorted(MODELS, key=lambda m: m[1]):
        x = _month(arxiv) + int(arxiv.split(".")[1]) / 100_000 / 12  # the number within the month spreads a month's papers
        row = next((r for r, previous in enumerate(last_on_row) if x - previous >= gap), len(last_on_row))
        last_on_row[row : row + 1] = [x]
        y = 1 + 0.75 * row
        ax.plot([x, x], [0, y - 0.22], color="#bbbbbb", lw=0.8, zorder=1)
        ax.scatter([x], [0], color=BACKBONE_COLOR[backbone], s=30, zorder=3)
        ax.text(
            x,
            y,
            f"{name}\n{arxiv}",
            ha="center",
            va="center",
            fontsize=8,
            color="white",
            zorder=4,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": BACKBONE_COLOR[backbone], "edgecolor": "none"},
        )
    start, end = _month("2405.0"), _month("2507.0")
    ax.axhline(0, color="#444444", lw=1, zorder=2)
    months = range(5, 20, 2)  # 2024-05, 2024-07, ..., 2025-07
    ax.set_xticks([2024 + (m - 1) / 12 for m in months])
    ax.set_xticklabels([f"{2024 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}" for m in months], fontsize=8)
    ax.set_xlim(start - 0.1, end + 0.02)
    ax.set_ylim(-0.3, 1 + 0.75 * len(last_on_row))
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    handles = [plt.Line2D([], [], marker="o", ls="", color=BACKBONE_COLOR[b], label=_backbone_label(lang, b).replace("\n", " ")) for b in BACKBONES[1:]]
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False)
    ax.set_xlabel(tr(lang, "arXiv 编号里的年月", "year and month in the arXiv id"), fontsize=9)
    fig.tight_layout()
    return fig
