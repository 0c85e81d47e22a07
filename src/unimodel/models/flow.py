"""Flow matching on straight paths (rectified flow; Lipman et al. 2022, Liu et al. 2022).

A network v_theta(x_t, t) regresses the velocity eps - x_0 of the straight
path x_t = (1 - t) x_0 + t eps from a data point (t = 0) to a noise draw
(t = 1); sampling integrates dx/dt = v_theta from pure noise at t = 1 down to
t = 0 with Euler steps. The path, the target, the loss and the sampler are
those of ``unimodel.experiments.flow``, which the BAGEL and UniWorld-V1 pages
explain with the exact field of a mixture.

The network is the DDPM's (``unimodel.models.diffusion.Denoiser``): the same
residual MLP told the time by the same sinusoidal embedding, so that the two
chapters differ only in what the network is asked to predict and how samples
are drawn. Time t in [0, 1] enters the embedding as 1000 t, the range of the
DDPM's integer steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unimodel.data import DIGIT_SIDE
from unimodel.experiments.flow import euler_sample, flow_matching_loss, training_example
from unimodel.limits import MAX_STEPS, check_count
from unimodel.models.diffusion import Denoiser, Diffusion

TIME_SCALE = 1000  # t in [0, 1] is embedded as TIME_SCALE * t, the DDPM's range of steps


@dataclass
class FlowConfig:
    data_dim: int = 2  # values per example: 2 for the 2-D mixtures, 64 for the 8x8 digits
    hidden: int = 256  # width of the velocity MLP (the DDPM's)
    layers: int = 4  # residual layers of the MLP
    time_dim: int = 64  # size of the sinusoidal embedding of t
    sample_steps: int = 100  # Euler steps from noise to a sample (network passes) when none are asked for

    def __post_init__(self) -> None:
        if self.data_dim not in (2, DIGIT_SIDE * DIGIT_SIDE):
            raise ValueError(f"data_dim must be 2 (points) or {DIGIT_SIDE * DIGIT_SIDE} (8x8 images), got {self.data_dim}")
        if min(self.hidden, self.layers, self.time_dim, self.sample_steps) < 1 or self.time_dim % 2:
            raise ValueError("hidden, layers, time_dim and sample_steps must be positive, and time_dim even")
        check_count(self.sample_steps, "sample_steps", MAX_STEPS)

    @property
    def images(self) -> bool:
        return self.data_dim != 2


class FlowMatching(nn.Module):
    """The velocity network, the flow-matching loss and the Euler sampler."""

    def __init__(self, config: FlowConfig):
        super().__init__()
        self.config = config
        self.net = Denoiser(config)

    # the DDPM's scaling: points unchanged, pixel levels 0..16 to [-1, 1] and samples back to [0, 1]
    as_input = Diffusion.as_input
    as_output = Diffusion.as_output

    # --8<-- [start:model]
    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v_θ(x_t, t) for x (B, data_dim) and t (B,) in [0, 1]."""
        return self.net(x, TIME_SCALE * t)

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        x0 = self.as_input(batch[0])
        t, noise, x_t = training_example(x0)  # one t ~ U(0, 1) and one ε per example
        return flow_matching_loss(self.velocity(x_t, t), x0, noise), {}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        """n samples (points, or images in [0, 1]) after ``steps`` Euler steps (default: the config's) from ε ~ N(0, I)."""
        noise = torch.randn((n, self.config.data_dim), generator=generator).to(next(self.parameters()).device)
        return self.as_output(euler_sample(self.velocity, noise, self.config.sample_steps if steps is None else steps))

    # --8<-- [end:model]

    @torch.no_grad()
    def trajectory(self, noise: torch.Tensor, steps: int) -> torch.Tensor:
        """Every state of the Euler chain from ``noise`` (B, data_dim) at t = 1 to t = 0, in the network's scale: (steps + 1, B, data_dim)."""
        return euler_sample(self.velocity, noise, steps, trajectory=True)
