"""Flow matching with straight paths ("rectified flow").

Flow matching (Lipman et al. 2022, arXiv 2210.02747) trains a network
v_theta(x, t) to be a velocity field whose ODE dx/dt = v carries noise to
data; rectified flow (Liu et al. 2022, arXiv 2209.03003) picks the simplest
path between a data point x_0 and a noise draw eps: the straight line.

Convention used everywhere here (the one of rectified flow and of recent
image generators): **t = 0 is data, t = 1 is noise**,

    x_t = (1 - t) x_0 + t eps,    eps ~ N(0, I),

so the velocity along a path, dx_t/dt = eps - x_0, is constant in t.
(Lipman et al. write the time the other way round, t = 0 noise and t = 1
data; only the sign of the velocity changes.) Training regresses
v_theta(x_t, t) on eps - x_0 with a mean squared error; sampling starts
from pure noise at t = 1 and integrates the ODE backwards to t = 0.

The network sees only x_t, never the pair (x_0, eps) it came from, so the
best it can do is the average velocity of all pairs passing through x_t,
E[eps - x_0 | x_t]. For a mixture of isotropic Gaussians that average has a
closed form, ``mixture_velocity``: the tests and the figures use it as a
perfectly trained network.

Shapes: a batch of B points of any shape, ``(B, ...)``; t is a float or a
tensor of shape ``(B,)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch


def _per_example(t, like: torch.Tensor) -> torch.Tensor:
    """t as a tensor that broadcasts over ``like``: a float stays a scalar, (B,) becomes (B, 1, ..., 1)."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return t.reshape(t.shape + (1,) * (like.dim() - t.dim())) if t.dim() else t


# --8<-- [start:flow-matching]
def interpolate(x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
    """The point at time t on the straight path from data x0 (t = 0) to noise (t = 1)."""
    t = _per_example(t, x0)
    return (1 - t) * x0 + t * noise  # x_t = (1 - t)·x_0 + t·ε


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The velocity dx_t/dt along that path: the same at every t."""
    return noise - x0  # u = dx_t / dt = ε - x_0


def flow_matching_loss(velocity: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the predicted velocity v_theta(x_t, t) and the target, over every element."""
    return ((velocity - velocity_target(x0, noise)) ** 2).mean()  # L_FM = E ‖v_θ(x_t, t) - (ε - x_0)‖²


# --8<-- [end:flow-matching]


def training_example(x0: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training draw per example: t ~ U(0, 1) of shape (B,), noise ~ N(0, I) like x0, and x_t."""
    t = torch.rand(x0.shape[0], generator=generator, dtype=x0.dtype).to(x0.device)  # (B,)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)  # (B, ...)
    return t, noise, interpolate(x0, noise, t)


# --8<-- [start:flow-sampling]
def euler_sample(velocity_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor, steps: int, trajectory: bool = False) -> torch.Tensor:
    """Integrate dx/dt = velocity_fn(x, t) from t = 1 (x = noise) down to t = 0 in ``steps`` equal Euler steps.

    ``velocity_fn(x, t)`` gets x of shape (B, ...) and t of shape (B,). Returns
    x at t = 0, or with ``trajectory=True`` every state, (steps + 1, B, ...).
    Deterministic: all the randomness is in ``noise``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    x, states = noise, [noise]
    times = torch.linspace(1, 0, steps + 1, dtype=noise.dtype, device=noise.device)
    for t, t_next in itertools.pairwise(times):
        v = velocity_fn(x, t.expand(x.shape[0]))
        x = x + (t_next - t) * v  # x_{t-Δt} = x_t - Δt·v_θ(x_t, t)
        states.append(x)
    return torch.stack(states) if trajectory else x


# --8<-- [end:flow-sampling]


def mixture_velocity(x: torch.Tensor, t: torch.Tensor, means: torch.Tensor, std: float) -> torch.Tensor:
    """The exact field E[eps - x0 | x_t = x] when x0 is an equal-weight mixture of N(m_k, std^2 I); x (B, D), t (B,), means (K, D).

    Given component k, x_t is Gaussian with mean (1 - t) m_k and variance
    sigma_t^2 = (1 - t)^2 std^2 + t^2, and (eps - x0, x_t) are jointly
    Gaussian, so E[eps - x0 | x_t, k] is linear in x_t. The components are
    weighted by their posterior probability given x_t. With one component this
    is the field of a single Gaussian, which carries N(0, I) at t = 1 exactly
    onto N(m, std^2 I) at t = 0.
    """
    t = t.to(x.dtype)[:, None, None]  # (B, 1, 1)
    centres = (1 - t) * means[None]  # (B, K, D)
    variance = (1 - t) ** 2 * std**2 + t**2  # σ_t² = (1-t)²·s² + t², (B, 1, 1)
    offset = x[:, None, :] - centres  # (B, K, D)
    per_component = -means[None] + (t - (1 - t) * std**2) / variance * offset  # E[ε - x_0 | x_t, k]
    weights = torch.softmax(-(offset**2).sum(-1) / (2 * variance[..., 0]), dim=1)  # (B, K), p(k | x_t)
    return (weights[..., None] * per_component).sum(1)  # (B, D)
