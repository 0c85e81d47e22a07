"""Block diagrams drawn from a description: boxes, and arrows between them.

The architecture figures of the unified-model pages are data, not pictures:
a list of ``Box`` (what a component is, where it sits, whether it is frozen)
and a list of ``Arrow`` (what feeds what). ``draw`` turns them into a
matplotlib figure, so a diagram is as easy to correct as a sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib import pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from unimodel.figures.style import PALETTE


@dataclass(frozen=True)
class Box:
    key: str  # how arrows name this box
    label: str  # the text inside; "\n" breaks lines
    x: float  # centre, in the diagram's units (the canvas spans width x height of them)
    y: float
    width: float = 2.0
    height: float = 0.8
    color: str = PALETTE[0]
    frozen: bool = False  # not trained in the stage shown: a dashed outline and a lighter fill


@dataclass(frozen=True)
class Arrow:
    start: str  # key of the box the arrow leaves
    end: str  # key of the box it enters
    label: str = ""  # written beside the arrow's middle
    bend: float = 0.0  # 0 draws a straight arrow; positive or negative values curve it to one side or the other


def _edge_point(box: Box, toward: tuple[float, float]) -> tuple[float, float]:
    """Where the segment from the box's centre to ``toward`` leaves the box's rectangle."""
    dx, dy = toward[0] - box.x, toward[1] - box.y
    if dx == 0 and dy == 0:
        raise ValueError(f"an arrow cannot point from box {box.key!r} to a point at its own centre")
    scale = min(box.width / 2 / abs(dx) if dx else float("inf"), box.height / 2 / abs(dy) if dy else float("inf"))
    return box.x + dx * scale, box.y + dy * scale


def draw(boxes: Sequence[Box], arrows: Sequence[Arrow], width: float, height: float, title: str | None = None, scale: float = 0.9):
    """The diagram on a ``width`` x ``height`` canvas; a figure inch is 1 / ``scale`` units."""
    by_key = {box.key: box for box in boxes}
    if len(by_key) != len(boxes):
        raise ValueError("two boxes share a key")
    missing = {key for arrow in arrows for key in (arrow.start, arrow.end)} - set(by_key)
    if missing:
        raise ValueError(f"arrows name boxes that do not exist: {sorted(missing)}")
    fig, ax = plt.subplots(figsize=(width * scale, height * scale))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    for box in boxes:
        ax.add_patch(
            FancyBboxPatch(
                (box.x - box.width / 2, box.y - box.height / 2),
                box.width,
                box.height,
                boxstyle="round,pad=0,rounding_size=0.12",
                facecolor=box.color,
                alpha=0.35 if box.frozen else 0.85,
                edgecolor=box.color,
                linewidth=1.5,
                linestyle="--" if box.frozen else "-",
            )
        )
        ax.text(box.x, box.y, box.label, ha="center", va="center", fontsize=9, color="black" if box.frozen else "white")
    for arrow in arrows:
        a, b = by_key[arrow.start], by_key[arrow.end]
        start, end = _edge_point(a, (b.x, b.y)), _edge_point(b, (a.x, a.y))
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#444444", linewidth=1.2, connectionstyle=f"arc3,rad={arrow.bend}"))
        if arrow.label:  # at the middle of the curve: arc3 bends it halfway to its control point, bend * (dy, -dx) off the chord's middle
            dx, dy = end[0] - start[0], end[1] - start[1]
            middle = ((start[0] + end[0] + arrow.bend * dy) / 2, (start[1] + end[1] - arrow.bend * dx) / 2)
            ax.annotate(arrow.label, middle, xytext=(4, 4), textcoords="offset points", fontsize=8, color="#444444")
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig
