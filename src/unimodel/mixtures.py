"""The 2-D Gaussian mixtures of the mode-collapse benchmark, and its metrics.

The protocol is PacGAN's (Lin et al. 2018, arXiv 1712.04086, Table 1, from
its official code): the ring is 8 Gaussians of std 0.01 on the unit circle,
the grid 25 Gaussians of std 0.05 on {-4, -2, 0, 2, 4}^2. From 2500 generated
points, a point is high quality (HQ) when it lies within 3 standard
deviations of its nearest mode; a mode is captured when at least one HQ
point is nearest to it; the HQ points' mode histogram is compared with the
uniform one by the Jensen-Shannon divergence (natural log).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

TRAIN_SIZE = 100_000  # points in a training set, as in PacGAN's code
EVAL_SIZE = 2500  # points drawn to evaluate, as in PacGAN's protocol
HQ_STDS = 3.0  # a point within this many standard deviations of a mode is high quality


@dataclass(frozen=True)
class Mixture:
    """Equal-weight isotropic Gaussians in the plane."""

    name: str
    means: torch.Tensor  # (M, 2)
    std: float

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n points (n, 2) and the mode each came from (n,)."""
        modes = torch.randint(len(self.means), (n,), generator=generator)
        return self.means[modes] + self.std * torch.randn(n, 2, generator=generator), modes


def _ring() -> Mixture:
    angles = 2 * math.pi * torch.arange(8) / 8
    return Mixture("ring", torch.stack([angles.cos(), angles.sin()], dim=1), 0.01)


def _grid() -> Mixture:
    values = [-4.0, -2.0, 0.0, 2.0, 4.0]
    return Mixture("grid", torch.tensor(list(itertools.product(values, values))), 0.05)


MIXTURES = {"ring": _ring(), "grid": _grid()}


# --8<-- [start:mode-metrics]
def nearest_mode(points: torch.Tensor, mixture: Mixture) -> tuple[torch.Tensor, torch.Tensor]:
    """Each point's distance to its nearest mode, in standard deviations, and that mode: (n,) and (n,)."""
    return (torch.cdist(points.double(), mixture.means.double()) / mixture.std).min(dim=1)


def mode_metrics(points: torch.Tensor, mixture: Mixture) -> dict:
    """PacGAN's metrics of generated points (n, 2): modes captured, share of HQ points, JSD to uniform."""
    distance, nearest = nearest_mode(points, mixture)
    high_quality = distance < HQ_STDS
    counts = torch.bincount(nearest[high_quality], minlength=len(mixture.means)).double()  # (M,)
    uniform = torch.full_like(counts, 1 / len(counts))
    return {
        "modes": int((counts > 0).sum()),
        "high_quality": high_quality.double().mean().item(),
        "jsd": jensen_shannon(counts / counts.sum(), uniform) if counts.sum() > 0 else math.log(2),
        "counts": counts.long().tolist(),
    }


# --8<-- [end:mode-metrics]


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> float:
    """JS(p, q) = KL(p || m)/2 + KL(q || m)/2 with m = (p + q)/2, in nats; between 0 and log 2."""
    m = (p + q) / 2

    def kl(a: torch.Tensor) -> torch.Tensor:
        mask = a > 0
        return (a[mask] * (a[mask] / m[mask]).log()).sum()

    return (kl(p) / 2 + kl(q) / 2).item()
