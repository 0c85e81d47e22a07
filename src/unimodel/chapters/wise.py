"""Figures and numbers of the WISE page: the published leaderboards, and WiScore on a few made-up judgements.

Nothing here is measured. The leaderboard is ``unimodel.experiments.wise.LEADERBOARD``
(the WISE README's published numbers) plus ``FURTHER``: two published scores
the page also needs, each with the condition it was measured under (a model
the README lists above the page's "top" models, and BAGEL with thinking,
from BAGEL's own README). ``VERIFIED`` is the WISE repository's rerun with an
open judge (WISE_Verified: Qwen3.5-35B-A3B, a binary 0/1 score per image,
about 200 prompts refreshed), kept apart because its scale differs. The
worked examples put chosen scores through ``unimodel.experiments.wise.wiscore``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib import pyplot as plt

from unimodel.experiments import wise
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
SOURCE = "PKU-YuanGroup/WISE, WISE_legacy/README.md · arXiv 2503.07265"


@dataclass(frozen=True)
class Published:
    model: str  # as its source writes it
    slug: str  # the key pages use in [[wise-leaderboard.further.SLUG]] or [[wise-leaderboard.verified.SLUG]]
    score: float  # overall score, as published
    kind: str  # "closed", "generation" or "unified", as in unimodel.experiments.wise.Entry
    condition: str  # "plain" (the original prompts) or "thinking" (the model writes its reasoning before it draws)
    source: str  # where the number is published


# Published overall WiScores (GPT-4o judge, 0-2 scores) beyond unimodel.experiments.wise.LEADERBOARD. Qwen-Image is
# one of several models the README's table lists above MetaQuery-XL and UniWorld-V1 (DeepGen1.0 0.73,
# LongCat-Image 0.65, NextFlow-RL 0.62, Qwen-Image 0.62, UniWorld-V2 0.58, Hunyuan-Image 3.0 0.57);
# it is shown because it is a generator conditioned on a multimodal LLM (Qwen2.5-VL).
# BAGEL with thinking is not on the original WISE leaderboard: BAGEL's README reports it from BAGEL's own run of
# the WISE evaluation (its EVAL.md: mode `think`; its script's default judge is gpt-4o-2024-11-20, the
# WISE README's is gpt-4o-2024-05-13).
FURTHER = (
    Published("Qwen-Image", "qwen-image", 0.62, "generation", "plain", "PKU-YuanGroup/WISE, WISE_legacy/README.md"),
    Published("BAGEL (thinking)", "bagel-thinking", 0.70, "unified", "thinking", "ByteDance-Seed/Bagel README"),
)

# WISE_Verified (PKU-YuanGroup/WISE, leadboard.md, commit eb51174): judge Qwen3.5-35B-A3B, each image scored
# 0 or 1 (no separate realism or aesthetics), overall = 0.40 culture + 0.12 x each of the five other
# categories. The models of this page that it lists, highest first; not comparable with the scores above.
VERIFIED = (
    Published("BAGEL (thinking)", "bagel-thinking", 0.628, "unified", "thinking", "PKU-YuanGroup/WISE, leadboard.md"),
    Published("Qwen-Image", "qwen-image", 0.510, "generation", "plain", "PKU-YuanGroup/WISE, leadboard.md"),
    Published("UniWorld-V1", "uniworld-v1", 0.426, "unified", "plain", "PKU-YuanGroup/WISE, leadboard.md"),
    Published("FLUX.1-dev", "flux-1-dev", 0.416, "generation", "plain", "PKU-YuanGroup/WISE, leadboard.md"),
    Published("BAGEL", "bagel", 0.352, "unified", "plain", "PKU-YuanGroup/WISE, leadboard.md"),
    Published("Janus-Pro-7B", "janus-pro-7b", 0.334, "unified", "plain", "PKU-YuanGroup/WISE, leadboard.md"),
)


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
    """The published overall scores by slug, under both judges, and the gaps the page talks about."""
    scores = {entry.slug: entry.wiscore for entry in wise.LEADERBOARD}
    open_best = max(entry.wiscore for entry in wise.LEADERBOARD if entry.kind != "closed")
    further = {entry.slug: entry.score for entry in FURTHER}
    verified = {entry.slug: entry.score for entry in VERIFIED}
    return {
        "scores": scores,
        "further": further,
        "verified": verified,
        "gap_closed_open": scores["gpt-4o"] - open_best,  # GPT-4o above the best open model of LEADERBOARD
        "gpt4o_over_qwen_image": scores["gpt-4o"] - further["qwen-image"],
        "uniworld_over_flux": scores["uniworld-v1"] - scores["flux-1-dev"],  # same generator family (FLUX), different condition
        "bagel_over_flux": scores["bagel"] - scores["flux-1-dev"],
        "flux_over_janus": scores["flux-1-dev"] - scores["janus-pro-7b"],
        "bagel_thinking_gain": further["bagel-thinking"] - scores["bagel"],  # same model, thinking on vs off
        "verified_uniworld_over_flux": verified["uniworld-v1"] - verified["flux-1-dev"],
        "verified_flux_over_bagel": verified["flux-1-dev"] - verified["bagel"],
        "verified_flux_over_janus": verified["flux-1-dev"] - verified["janus-pro-7b"],
        "verified_bagel_thinking_gain": verified["bagel-thinking"] - verified["bagel"],
        "models": len(scores),
    }


def _bars(ax, entries, lang: str, digits: int) -> None:
    """Horizontal bars, highest on top, coloured by kind; a hatched bar is a score measured with thinking."""
    y = np.arange(len(entries))[::-1]
    for row, (_model, score, kind, condition) in zip(y, entries):
        hatch = "///" if condition == "thinking" else None
        ax.barh(row, score, color=KIND_COLORS[kind], height=0.62, hatch=hatch, edgecolor="white" if hatch else None)
        ax.text(score + 0.012, row, f"{score:.{digits}f}", va="center", fontsize=8.5)
    names = [model.replace(" (thinking)", tr(lang, "（先思考再画）", " (thinking)")) for model, *_ in entries]
    ax.set_yticks(y, names, fontsize=8.5)
    ax.set_xlim(0, 1)


@figure("wise/leaderboard")
def leaderboard(lang: str):
    """Left: the published WiScores (GPT-4o judge) with the further entries. Right: the open-judge rerun of the same repository."""
    first = [(e.model, e.wiscore, e.kind, "plain") for e in wise.LEADERBOARD] + [(e.model, e.score, e.kind, e.condition) for e in FURTHER]
    first.sort(key=lambda entry: -entry[1])
    second = [(e.model, e.score, e.kind, e.condition) for e in VERIFIED]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.4, 4.2), gridspec_kw={"width_ratios": [1.15, 1]})
    _bars(left, first, lang, 2)
    _bars(right, second, lang, 3)
    left.set_title(tr(lang, "原版 WISE：GPT-4o 当裁判，WiScore", "original WISE: GPT-4o judge, WiScore"), fontsize=10)
    right.set_title(
        tr(
            lang,
            "WISE_Verified：开源裁判 Qwen3.5-35B-A3B，\n每张图 0 或 1 分（分数不能和左图比）",
            "WISE_Verified: open judge Qwen3.5-35B-A3B,\n0 or 1 per image (not comparable with the left)",
        ),
        fontsize=10,
    )
    left.set_xlabel(tr(lang, "总体 WiScore（越高越好）", "overall WiScore (higher is better)"), fontsize=9)
    right.set_xlabel(tr(lang, "总体分数（越高越好）", "overall score (higher is better)"), fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=KIND_COLORS[k]) for k in KIND_COLORS]
    labels = [kind_label(k, lang) for k in KIND_COLORS]
    handles.append(plt.Rectangle((0, 0), 1, 1, facecolor=KIND_COLORS["unified"], hatch="///", edgecolor="white"))
    labels.append(tr(lang, "先思考再画（其余都是原提示词）", "thinking before drawing (all others: plain prompts)"))
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.045), ncol=4, fontsize=7.5, frameon=False)
    note = tr(
        lang,
        f"来源：左 {SOURCE}（BAGEL 先思考再画：BAGEL README，不在 WISE 最初的排行榜上）；右 PKU-YuanGroup/WISE leadboard.md。都不是本站测的",
        f"Sources: left {SOURCE} (BAGEL thinking: BAGEL README, not on the original WISE leaderboard); right PKU-YuanGroup/WISE leadboard.md. None measured here",
    )
    fig.text(0.99, 0.01, note, ha="right", va="bottom", fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


@figure("wise/examples")
def worked_examples(lang: str):
    """Each worked example's WiScore as a stacked bar: what Consistency, Realism and Aesthetics add."""
    names = list(EXAMPLES)
    parts = [
        ("consistency", tr(lang, "一致性 C", "Consistency C")),
        ("realism", tr(lang, "真实感 R", "Realism R")),
        ("aesthetics", tr(lang, "美观 A", "Aesthetics A")),
    ]
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
