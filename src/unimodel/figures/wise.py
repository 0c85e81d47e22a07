"""Figures and numbers of the WISE page: the published leaderboard, and WiScore on a few made-up judgements.

Nothing here is measured: the leaderboard is ``unimodel.wise.LEADERBOARD``
(the WISE README's published numbers), and the worked examples put chosen
scores through ``unimodel.wise.wiscore``.
"""

from __future__ import annotations

import numpy as np
from matplotlib import pyplot as plt

from unimodel import wise
from unimodel.figures.registry import figure, result
from unimodel.figures.style import PALETTE, tr

# name on the page -> the judge's (Consistency, Realism, Aesthetics), and how the figure describes it
EXAMPLES = {
    "perfect": ((2, 2, 2), "全对、逼真、好看", "right, realistic, beautiful"),
    "right_plain": ((2, 1, 1), "知识对，画得一般", "right knowledge, plain picture"),
    "partly_right": ((1, 2, 2), "只对了一半，画得很好", "half right, well drawn"),
    "middling": ((1, 1, 1), "三项都是 1", "1 on every score"),
    "pretty_but_wrong": ((0, 2, 2), "知识错，画得很好", "wrong knowledge, well drawn"),
}
KIND_COLORS = {"closed": PALETTE[7], "generation": PALETTE[1], "unified": PALETTE[0]}
SOURCE = "PKU-YuanGroup/WISE README · arXiv 2503.07265"


def kind_label(kind: str, lang: str) -> str:
    return {
        "closed": tr(lang, "闭源商业模型", "closed commercial model"),
        "generation": tr(lang, "只做生成的文生图模型", "text-to-image model only"),
        "unified": tr(lang, "统一模型", "unified model"),
    }[kind]


@result("wise-examples")
def examples() -> dict:
    """WiScore of each worked example, the weights, and the two extremes of one score alone."""
    table = {name: wise.wiscore(*scores) for name, (scores, _, _) in EXAMPLES.items()}
    table["zero"] = wise.wiscore(0, 0, 0)
    table["consistency_only"] = wise.wiscore(2, 0, 0)  # full marks on Consistency and nothing else
    table["weights"] = dict(wise.WEIGHTS)
    table["scores"] = {name: list(scores) for name, (scores, _, _) in EXAMPLES.items()}
    return table


@result("wise-leaderboard")
def leaderboard_numbers() -> dict:
    """The published overall WiScores by slug, and the gaps the page talks about."""
    scores = {entry.slug: entry.wiscore for entry in wise.LEADERBOARD}
    open_best = max(entry.wiscore for entry in wise.LEADERBOARD if entry.kind != "closed")
    return {
        "scores": scores,
        "gap_closed_open": scores["gpt-4o"] - open_best,  # GPT-4o above the best open model
        "uniworld_over_flux": scores["uniworld-v1"] - scores["flux-1-dev"],  # same generator family (FLUX), different condition
        "models": len(scores),
    }


@figure("wise/leaderboard")
def leaderboard(lang: str):
    """The published overall WiScore of each model as horizontal bars, highest on top, coloured by kind."""
    entries = wise.LEADERBOARD
    y = np.arange(len(entries))[::-1]
    fig, ax = plt.subplots(figsize=(6.6, 3.6))
    for row, entry in zip(y, entries):
        ax.barh(row, entry.wiscore, color=KIND_COLORS[entry.kind], height=0.62)
        ax.text(entry.wiscore + 0.012, row, f"{entry.wiscore:.2f}", va="center", fontsize=9)
    ax.set_yticks(y, [entry.model for entry in entries])
    ax.set_xlim(0, 1)
    ax.set_xlabel(tr(lang, "WiScore（0 到 1，越高越好）", "WiScore (0 to 1, higher is better)"))
    handles = [plt.Rectangle((0, 0), 1, 1, color=KIND_COLORS[k]) for k in KIND_COLORS]
    ax.legend(handles, [kind_label(k, lang) for k in KIND_COLORS], loc="lower right", fontsize=8, frameon=False)
    ax.set_title(tr(lang, "WISE 排行榜：公开发表的总体 WiScore", "WISE leaderboard: published overall WiScore"), fontsize=11)
    fig.text(0.99, 0.01, tr(lang, f"来源：{SOURCE}；不是本站测的", f"Source: {SOURCE}; not measured here"), ha="right", va="bottom", fontsize=7.5, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


@figure("wise/examples")
def worked_examples(lang: str):
    """Each worked example's WiScore as a stacked bar: what Consistency, Realism and Aesthetics add."""
    names = list(EXAMPLES)
    parts = [("consistency", tr(lang, "一致性 C", "Consistency C")), ("realism", tr(lang, "真实感 R", "Realism R")), ("aesthetics", tr(lang, "美观 A", "Aesthetics A"))]
    y = np.arange(len(names))[::-1]
    fig, ax = plt.subplots(figsize=(6.8, 3.2))
    for row, name in zip(y, names):
        scores, _, _ = EXAMPLES[name]
        left = 0.0
        for (part, _), score, color in zip(parts, scores, PALETTE[:3]):
            width = wise.WEIGHTS[part] * score / wise.SCORE_MAX  # what this score adds to WiScore
            ax.barh(row, width, left=left, color=color, height=0.62)
            left += width
        ax.text(left + 0.012, row, f"{wise.wiscore(*scores):.2f}", va="center", fontsize=9)
    labels = [f"{tr(lang, EXAMPLES[n][1], EXAMPLES[n][2])}\nC={EXAMPLES[n][0][0]}, R={EXAMPLES[n][0][1]}, A={EXAMPLES[n][0][2]}" for n in names]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("WiScore")
    handles = [plt.Rectangle((0, 0), 1, 1, color=color) for color in PALETTE[:3]]
    ax.legend(handles, [label for _, label in parts], loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=8, frameon=False)
    ax.set_title(tr(lang, "WiScore 由三项加权相加：一致性占 0.7", "WiScore adds three weighted scores: Consistency weighs 0.7"), fontsize=11)
    fig.tight_layout()
    return fig
