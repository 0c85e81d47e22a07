"""WISE: the WiScore of a generated image, and the published leaderboard.

WISE (arXiv 2503.07265) asks text-to-image models for 1000
prompts that need world knowledge (25 subdomains of cultural common sense,
spatio-temporal reasoning and natural science). GPT-4o judges every image on
three scores, each 0, 1 or 2: Consistency (does the image show what the
knowledge implies?), Realism and Aesthetics. WiScore weights them and divides
by 2, so that it lies in [0, 1]:

    WiScore = (0.7 C + 0.2 R + 0.1 A) / 2

This module computes that number; it does not call a judge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --8<-- [start:wiscore]
WEIGHTS = {"consistency": 0.7, "realism": 0.2, "aesthetics": 0.1}  # the weights of WISE; they sum to 1
SCORE_MAX = 2.0  # the judge scores each aspect 0, 1 or 2


def wiscore(consistency, realism, aesthetics):
    """WiScore in [0, 1] from the judge's three scores in [0, 2]: floats, or numpy arrays scored elementwise."""
    scores = {"consistency": consistency, "realism": realism, "aesthetics": aesthetics}
    arrays = {}
    for name, value in scores.items():
        array = np.asarray(value, dtype=float)
        if np.isnan(array).any() or (array < 0).any() or (array > SCORE_MAX).any():
            raise ValueError(f"{name} must lie between 0 and {SCORE_MAX:g}, got {value!r}")
        arrays[name] = array
    # WiScore = (0.7·C + 0.2·R + 0.1·A) / 2
    total = sum(WEIGHTS[name] * arrays[name] for name in WEIGHTS) / SCORE_MAX
    return float(total) if total.ndim == 0 else total


# --8<-- [end:wiscore]


@dataclass(frozen=True)
class Entry:
    model: str  # as the leaderboard writes it
    slug: str  # the key pages use in [[wise-leaderboard.scores.SLUG]]
    wiscore: float  # overall WiScore, as published
    kind: str  # "closed" (a commercial model), "generation" (text-to-image only) or "unified"


# Overall WiScore as published in the leaderboard of the WISE README
# (github.com/PKU-YuanGroup/WISE, WISE_legacy/README.md), sorted highest first here
# (the two 0.55 entries alphabetically).
# Published numbers, not measured here.
LEADERBOARD = (
    Entry("GPT-4o", "gpt-4o", 0.80, "closed"),
    Entry("MetaQuery-XL", "metaquery-xl", 0.55, "unified"),
    Entry("UniWorld-V1", "uniworld-v1", 0.55, "unified"),
    Entry("BAGEL", "bagel", 0.52, "unified"),
    Entry("FLUX.1-dev", "flux-1-dev", 0.50, "generation"),
    Entry("Emu3", "emu3", 0.39, "unified"),
    Entry("Janus-Pro-7B", "janus-pro-7b", 0.35, "unified"),
)
