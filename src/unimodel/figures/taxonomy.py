"""Figures and numbers of the taxonomy chapter: the four families on the same digits and the same budget.

The table is ``unimodel.taxonomy.measure_all`` with each model trained
through the cache (seed 0, 200 epochs each, the DDPM also with its chapter's
1000), so the GAN, PixelCNN and long-DDPM rows reuse their chapters' runs.
"""

from __future__ import annotations

import numpy as np
from matplotlib import pyplot as plt

from unimodel import taxonomy
from unimodel.data import DIGIT_SIDE
from unimodel.figures.registry import budget, compute_result, figure, result, trains
from unimodel.figures.style import PALETTE, show_images, tr
from unimodel.runs import RunSpec, cached_run

BUDGET = taxonomy.Budget(
    epochs=budget(full=200, quick=2),
    long_epochs=budget(full=1000, quick=20),
    steps=budget(full=1000, quick=100),
    samples=budget(full=1000, quick=500),
    importance_samples=budget(full=5000, quick=50),
)
COLORS = {"pixelcnn": PALETTE[0], "vae": PALETTE[1], "gan": PALETTE[3], "diffusion": PALETTE[2], "diffusion-long": PALETTE[4]}
OFFSETS = {"pixelcnn": (6, 4), "vae": (6, 4), "gan": (6, 6), "diffusion": (-8, -12), "diffusion-long": (-8, 6)}  # labels, in points, clear of each other


@trains
def runs() -> list[RunSpec]:
    return [RunSpec(row.model, row.config(BUDGET), taxonomy.train_config(row, BUDGET)) for row in taxonomy.ROWS.values()]


def rows(measured: dict) -> list[tuple[str, dict]]:
    """The measured rows in the table's order (the cache stores them sorted by name)."""
    return [(name, measured["rows"][name]) for name in taxonomy.ROWS]


def label(name: str, lang: str) -> str:
    """The row's name on a figure."""
    if name.startswith("diffusion"):
        epochs = BUDGET.long_epochs if name == "diffusion-long" else BUDGET.epochs
        return tr(lang, f"DDPM（{epochs} 轮）", f"DDPM ({epochs} epochs)")
    return {"pixelcnn": "PixelCNN", "vae": "VAE", "gan": "GAN"}[name]


@result("taxonomy-table")
def table() -> dict:
    """The table of the chapter, with the comparisons its text quotes."""
    measured = taxonomy.measure_all(BUDGET, lambda row, model, config, train: cached_run(model, config, train))
    rows = measured["rows"]
    pixels = DIGIT_SIDE * DIGIT_SIDE
    measured["passes"] = {"pixelcnn": pixels, "vae": 1, "gan": 1, "diffusion": BUDGET.steps, "diffusion-long": BUDGET.steps}  # network passes per sample
    # the one-pass samplers take hundredths of a millisecond, too little to time precisely: the slower of the two is the yardstick
    one_pass = max(rows["vae"]["ms_per_image"], rows["gan"]["ms_per_image"])
    measured["one_pass_ms"] = one_pass
    measured["times_one_pass"] = {name: rows[name]["ms_per_image"] / one_pass for name in ("pixelcnn", "diffusion", "diffusion-long")}
    return measured


@figure("taxonomy/samples")
def samples(lang: str):
    """Sixteen samples of each model beside sixteen real test digits."""
    measured = compute_result("taxonomy-table")
    panels = [(tr(lang, "真实测试集数字", "real test digits"), measured["real"]["shown"])]
    panels += [(label(name, lang), row["shown"]) for name, row in rows(measured)]
    fig, axes = plt.subplots(2, 3, figsize=(9.5, 4.2))
    for ax, (title, images) in zip(axes.flat, panels):
        show_images(ax, np.asarray(images), rows=2, title=title)
    fig.tight_layout()
    return fig


@figure("taxonomy/precision-recall")
def precision_recall(lang: str):
    """Precision against recall per model, and real digits as the ceiling."""
    measured = compute_result("taxonomy-table")
    real = measured["real"]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, row in rows(measured):
        ax.scatter(row["recall"], row["precision"], s=60, color=COLORS[name], zorder=3)
        dx, dy = OFFSETS[name]
        ax.annotate(label(name, lang), (row["recall"], row["precision"]), textcoords="offset points", xytext=(dx, dy), fontsize=9, ha="left" if dx > 0 else "right")
    ax.scatter(real["recall"], real["precision"], s=140, marker="*", color="black", zorder=3)
    ax.annotate(tr(lang, "真实数字\n（训练集对测试集）", "real digits\n(train vs test)"), (real["recall"], real["precision"]), textcoords="offset points", xytext=(8, 4), fontsize=9)
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(tr(lang, "召回率：真实数字被样本覆盖的比例", "recall: share of real digits covered by samples"))
    ax.set_ylabel(tr(lang, "精确率：样本落在真实数字附近的比例", "precision: share of samples near real digits"))
    ax.set_title(tr(lang, f"k-NN 精确率与召回率（k = {BUDGET.k}，像素空间）", f"k-NN precision and recall (k = {BUDGET.k}, pixel space)"), fontsize=10)
    fig.tight_layout()
    return fig


@figure("taxonomy/sampling-time")
def sampling_time(lang: str):
    """The time one sample takes per model (log scale), with the network passes it needs."""
    measured = compute_result("taxonomy-table")
    names = list(taxonomy.ROWS)
    values = [measured["rows"][name]["ms_per_image"] for name in names]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.barh([label(name, lang) for name in names], values, color=[COLORS[name] for name in names])
    for i, name in enumerate(names):
        passes = measured["passes"][name]
        passes_en = "1 network pass" if passes == 1 else f"{passes} network passes"
        ax.text(values[i] * 1.15, i, tr(lang, f"{values[i]:.2f} 毫秒，{passes} 次网络前向", f"{values[i]:.2f} ms, {passes_en}"), va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 2, max(values) * 40)
    ax.invert_yaxis()
    ax.set_xlabel(tr(lang, f"每张样本的采样时间（毫秒，对数轴；一次采 {BUDGET.samples} 张）", f"sampling time per image (ms, log scale; {BUDGET.samples} drawn at once)"))
    fig.tight_layout()
    return fig
