"""One look for every figure, Chinese labels included, and image grids."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib import pyplot as plt

from unimodel.checkpoint import atomic_write

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei")
PALETTE = ["#3b6ea8", "#d9822b", "#3f9a5a", "#c4473d", "#7d5ba6", "#8c6d46", "#d16fae", "#6f6f6f", "#a7a83a", "#35a3b5"]


def cjk_font() -> str:
    """The first installed font that draws Chinese; a clear error when there is none."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return name
    raise RuntimeError(
        "no font that draws Chinese is installed; on Debian/Ubuntu: sudo apt-get install fonts-noto-cjk (then delete ~/.cache/matplotlib so matplotlib sees it)"
    )


def setup(lang: str) -> None:
    """Matplotlib settings shared by all figures; Chinese figures get a CJK font."""
    plt.rcdefaults()
    fonts = [cjk_font(), "DejaVu Sans"] if lang == "zh" else ["DejaVu Sans"]
    plt.rcParams.update(
        {
            "font.family": "sans-serif",
            "font.sans-serif": fonts,
            "axes.unicode_minus": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "font.size": 10,
            "svg.hashsalt": "unimodel",
        }
    )


def tr(lang: str, zh: str, en: str) -> str:
    """The label in the figure's language."""
    return zh if lang == "zh" else en


def image_grid(images: np.ndarray, rows: int, pad: int = 1) -> np.ndarray:
    """Tile (n, side*side) square images in [0, 1] into one array with ``rows`` rows, padded with white."""
    n, side = len(images), math.isqrt(images.shape[1])
    cols = -(-n // rows)
    canvas = np.ones((rows * (side + pad) + pad, cols * (side + pad) + pad))
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        canvas[top : top + side, left : left + side] = 1.0 - image.reshape(side, side)  # dark ink on white
    return canvas


def show_images(ax, images: np.ndarray, rows: int, title: str | None = None) -> None:
    ax.imshow(image_grid(np.asarray(images), rows), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)


def show_points(ax, points, means, limit: float, color: str = PALETTE[0], title: str | None = None) -> None:
    """A scatter of 2-D points over the circled centres ``means`` of a mixture's modes, in the square [-limit, limit]^2."""
    means, points = np.asarray(means), np.asarray(points)
    ax.scatter(means[:, 0], means[:, 1], s=40, facecolors="none", edgecolors=PALETTE[3], linewidths=0.8, zorder=3)
    ax.scatter(points[:, 0], points[:, 1], s=3, color=color, alpha=0.5, linewidths=0)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def save(fig, path: str | Path) -> None:
    """Write a figure as PNG, atomically, without metadata that changes between runs."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight", metadata={"Software": None}))
    plt.close(fig)


def save_image_grid(images: np.ndarray, path: str | Path) -> None:
    """A PNG grid of (n, 64) images in [0, 1], as ``unimodel sample`` writes it."""
    setup("en")
    rows = int(np.ceil(np.sqrt(len(images))))
    fig, ax = plt.subplots(figsize=(max(2, rows * 0.45), max(2, rows * 0.45)))
    show_images(ax, images, rows)
    save(fig, path)


def save_point_cloud(points: np.ndarray, path: str | Path) -> None:
    """A PNG scatter plot of (n, 2) points, as ``unimodel sample`` writes it for 2-D data."""
    setup("en")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, color="black", linewidths=0)
    ax.set_aspect("equal")
    save(fig, path)
