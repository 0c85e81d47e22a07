"""Denoising diffusion probabilistic models (DDPM; Ho et al. 2020, arXiv 2006.11239).

The forward process destroys data in T small Gaussian steps,
q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I). With
alpha_t = 1 - beta_t and alpha_bar_t = prod_{s <= t} alpha_s, x_t can be drawn
from x_0 in one go: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
A network eps_theta(x_t, t) learns to predict the noise eps that was added
(the "simple" loss, a mean squared error), and sampling runs the chain
backwards from pure noise x_T ~ N(0, I), one reverse step per t, each step
adding fresh noise.

The network is an MLP with residual layers, told t by a sinusoidal
embedding added at every layer; it reads 2-D points or the 64 pixels of an
8x8 digit (scaled to [-1, 1]). The schedule is the paper's by default:
T = 1000, beta linear from 1e-4 to 0.02. With fewer steps both ends are
scaled by 1000 / T, as in the linear schedule of improved DDPM (Nichol &
Dhariwal 2021, arXiv 2102.09672), so that alpha_bar_T stays near zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE
from unimodel.limits import MAX_STEPS, check_count


@dataclass
class DiffusionConfig:
    data_dim: int = 2  # values per example: 2 for the 2-D mixtures, 64 for the 8x8 digits
    steps: int = 1000  # T, the number of noising steps (the paper's 1000; fewer sample faster)
    beta_start: float = 1e-4  # beta_1 when T = 1000 (scaled by 1000 / T otherwise)
    beta_end: float = 0.02  # beta_T when T = 1000 (scaled by 1000 / T otherwise)
    hidden: int = 256  # width of the noise-predicting MLP
    layers: int = 4  # residual layers of the MLP
    time_dim: int = 64  # size of the sinusoidal embedding of t

    def __post_init__(self) -> None:
        if self.data_dim not in (2, DIGIT_SIDE * DIGIT_SIDE):
            raise ValueError(f"data_dim must be 2 (points) or {DIGIT_SIDE * DIGIT_SIDE} (8x8 images), got {self.data_dim}")
        if min(self.steps, self.hidden, self.layers, self.time_dim) < 1 or self.time_dim % 2:
            raise ValueError("steps, hidden, layers and time_dim must be positive, and time_dim even")
        check_count(self.steps, "steps", MAX_STEPS)
        if not 0 < self.beta_start <= self.beta_end:
            raise ValueError(f"need 0 < beta_start <= beta_end, got {self.beta_start} and {self.beta_end}")
        if self.beta_end * 1000 / self.steps >= 1:
            raise ValueError(f"{self.steps} steps scale beta_end to {self.beta_end * 1000 / self.steps:g}, which must stay below 1: use more steps")

    @property
    def images(self) -> bool:
        return self.data_dim != 2


# --8<-- [start:schedule]
def linear_betas(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """beta_1 .. beta_T, linear; the ends are given for T = 1000 and scaled by 1000 / T."""
    scale = 1000 / steps
    return torch.linspace(beta_start * scale, beta_end * scale, steps, dtype=torch.float64)


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """ᾱ_t = ∏_{s=1}^{t} (1 - β_s), for t = 1 .. T."""
    return torch.cumprod(1 - betas, dim=0)


# --8<-- [end:schedule]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sines and cosines of t at geometrically spaced frequencies (the Transformer's positions): (B,) -> (B, dim)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)  # (half,)
    angles = t.float()[:, None] * frequencies[None]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class Denoiser(nn.Module):
    """eps_theta(x_t, t): residual MLP layers, each told t."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.time_dim = config.time_dim
        self.time = nn.Sequential(nn.Linear(config.time_dim, config.hidden), nn.SiLU(), nn.Linear(config.hidden, config.hidden))
        self.input = nn.Linear(config.data_dim, config.hidden)
        self.layers = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(config.hidden, config.hidden)) for _ in range(config.layers))
        self.output = nn.Sequential(nn.SiLU(), nn.Linear(config.hidden, config.data_dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        time = self.time(timestep_embedding(t, self.time_dim))  # (B, hidden)
        h = self.input(x)  # (B, hidden)
        for layer in self.layers:
            h = h + layer(h + time)
        return self.output(h)  # (B, data_dim)


class Diffusion(nn.Module):
    """The noise schedule, the noise predictor, the training loss and the reverse chain."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        betas = linear_betas(config.steps, config.beta_start, config.beta_end)
        # buffers move with the model to its device; not saved (persistent=False): the config rebuilds them.
        # Index t - 1 for step t. 1 - alpha_bar is taken in float64: float32 loses most of its digits near t = 1
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alpha_bars", alpha_bars(betas).float(), persistent=False)
        self.register_buffer("one_minus_alpha_bars", (1 - alpha_bars(betas)).float(), persistent=False)
        self.net = Denoiser(config)

    @property
    def steps(self) -> int:
        return self.config.steps

    def as_input(self, x: torch.Tensor) -> torch.Tensor:
        """Training data as the network sees it: points unchanged, pixel levels 0..16 scaled to [-1, 1]."""
        return x.float() / (DIGIT_LEVELS - 1) * 2 - 1 if self.config.images else x.float()

    def as_output(self, x: torch.Tensor) -> torch.Tensor:
        """Samples as the package hands them out: points unchanged, images as intensities in [0, 1]."""
        return ((x + 1) / 2).clamp(0, 1) if self.config.images else x

    def _noise(self, shape, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(self.betas.device)

    # --8<-- [start:forward-process]
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t drawn from q(x_t | x_0) in one step, for a batch of steps t (B,) in 1 .. T."""
        alpha_bar, one_minus = self.alpha_bars[t - 1][:, None], self.one_minus_alpha_bars[t - 1][:, None]  # (B, 1)
        return alpha_bar.sqrt() * x0 + one_minus.sqrt() * noise  # x_t = √ᾱ_t·x_0 + √(1-ᾱ_t)·ε

    # --8<-- [end:forward-process]

    # --8<-- [start:loss]
    def loss(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The simple loss ‖ε - ε_θ(x_t, t)‖², averaged over the batch and the dimensions."""
        return F.mse_loss(self.net(self.q_sample(x0, t, noise), t), noise)

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        x0 = self.as_input(batch[0])
        t = torch.randint(1, self.steps + 1, (len(x0),), device=x0.device)  # one random step per example, not a walk through all of them
        loss = self.loss(x0, t, torch.randn_like(x0))
        return loss, {}

    # --8<-- [end:loss]

    # --8<-- [start:reverse-step]
    def predict_x0(self, x: torch.Tensor, t: int, eps: torch.Tensor) -> torch.Tensor:
        """The network's guess of the clean data: x̂_0 = (x_t - √(1-ᾱ_t)·ε_θ) / √ᾱ_t."""
        return (x - self.one_minus_alpha_bars[t - 1].sqrt() * eps) / self.alpha_bars[t - 1].sqrt()

    def reverse_step(self, x: torch.Tensor, t: int, eps: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """x_{t-1} from x_t and the predicted noise; ``noise=None`` keeps only the mean (the ablation)."""
        beta = self.betas[t - 1]
        mean = (x - beta / self.one_minus_alpha_bars[t - 1].sqrt() * eps) / (1 - beta).sqrt()  # μ_θ = (1 / √α_t)·(x_t - β_t / √(1-ᾱ_t)·ε_θ)
        if noise is None or t == 1:
            return mean
        return mean + beta.sqrt() * noise  # x_{t-1} = μ_θ + σ_t·z, σ_t² = β_t

    # --8<-- [end:reverse-step]

    # --8<-- [start:elbo]
    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
        """The mean of q(x_{t-1} | x_t, x_0), what each reverse step should hit."""
        beta = self.betas[t - 1]
        alpha_bar_prev, one_minus_prev = (self.alpha_bars[t - 2], self.one_minus_alpha_bars[t - 2]) if t > 1 else (1.0, 0.0)
        # μ̃_t = (√ᾱ_{t-1}·β_t / (1-ᾱ_t))·x_0 + (√α_t·(1-ᾱ_{t-1}) / (1-ᾱ_t))·x_t
        return (alpha_bar_prev**0.5 * beta * x0 + (1 - beta).sqrt() * one_minus_prev * x_t) / self.one_minus_alpha_bars[t - 1]

    def elbo_weights(self) -> torch.Tensor:
        """λ_t for t = 1 .. T: the bound's term L_{t-1} (t >= 2) is λ_t·‖ε - ε_θ‖² plus a constant."""
        alphas = 1 - self.betas
        return self.betas / (2 * alphas * self.one_minus_alpha_bars)  # λ_t = β_t² / (2σ_t²·α_t·(1-ᾱ_t)) with σ_t² = β_t

    # --8<-- [end:elbo]

    # --8<-- [start:bound]
    @torch.no_grad()
    def nll_bound(self, levels: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The variational bound on -log p(x_0) of images given as pixel levels (B, 64), in nats per image, term by term.

        "total" = "prior" (L_T) + "steps" summed (L_{t-1} for t = 2 .. T, column j for t = j + 2, shape (B, T - 1))
        + "decoder" (L_0). Each KL is taken in closed form at one draw of x_t ~ q(x_t | x_0); L_0 is the
        probability the last step's Gaussian gives to the pixel's bin (a discretized decoder, Ho et al. sec. 3.3).
        """
        if not self.config.images:
            raise ValueError("the bound is defined here for images of discrete pixel levels, not for 2-D points")
        x0 = self.as_input(levels.to(self.betas.device))  # (B, 64) in [-1, 1]
        n = len(x0)

        def gaussian_kl(mean_q, var_q, mean_p, var_p):  # KL(N(mean_q, var_q) || N(mean_p, var_p)), summed over the pixels
            return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1).sum(1)

        prior = gaussian_kl(self.alpha_bars[-1].sqrt() * x0, self.one_minus_alpha_bars[-1], 0.0, 1.0)  # L_T: q(x_T | x_0) against N(0, I)
        steps = torch.zeros(n, self.steps - 1, device=x0.device)
        for t in range(self.steps, 1, -1):
            x_t = self.q_sample(x0, torch.full((n,), t, device=x0.device), self._noise(x0.shape, generator))
            eps = self.net(x_t, torch.full((n,), t, device=x0.device))
            # the variance of q(x_{t-1} | x_t, x_0): β̃_t = (1-ᾱ_{t-1}) / (1-ᾱ_t)·β_t
            posterior_var = self.one_minus_alpha_bars[t - 2] / self.one_minus_alpha_bars[t - 1] * self.betas[t - 1]
            steps[:, t - 2] = gaussian_kl(self.posterior_mean(x0, x_t, t), posterior_var, self.reverse_step(x_t, t, eps, None), self.betas[t - 1])
        first = torch.ones(n, dtype=torch.long, device=x0.device)  # t = 1 for every image
        x_1 = self.q_sample(x0, first, self._noise(x0.shape, generator))
        mean = self.reverse_step(x_1, 1, self.net(x_1, first), None)  # the decoder's mean
        half_bin = 1.0 / (DIGIT_LEVELS - 1)  # levels are 2 / 16 apart in [-1, 1]
        normal = torch.distributions.Normal(mean, self.betas[0].sqrt())
        upper = torch.where(x0 > 1 - half_bin, torch.ones_like(x0), normal.cdf(x0 + half_bin))  # the top level takes all above
        lower = torch.where(x0 < -1 + half_bin, torch.zeros_like(x0), normal.cdf(x0 - half_bin))  # the bottom level all below
        decoder = -torch.log((upper - lower).clamp_min(1e-12)).sum(1)  # L_0 = -log p(x_0 | x_1)
        return {"total": prior + steps.sum(1) + decoder, "prior": prior, "steps": steps, "decoder": decoder}

    # --8<-- [end:bound]

    @torch.no_grad()
    def sample_chain(
        self, n: int, generator: torch.Generator | None = None, add_noise: bool = True, keep: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, dict[int, tuple[torch.Tensor, torch.Tensor]]]:
        """Run the reverse chain from x_T ~ N(0, I) for n samples.

        Returns x_0 in the network's scale, and for each t in ``keep``
        the pair (x_t, predicted x_0) in the output scale (see ``as_output``).
        ``add_noise=False`` drops the fresh noise of every reverse step.
        """
        training = self.training
        self.eval()
        x = self._noise((n, self.config.data_dim), generator)  # x_T
        kept = {}
        for t in range(self.steps, 0, -1):
            eps = self.net(x, torch.full((n,), t, device=x.device))
            if t in keep:
                kept[t] = (self.as_output(x), self.as_output(self.predict_x0(x, t, eps)))
            noise = self._noise(x.shape, generator) if add_noise else None
            x = self.reverse_step(x, t, eps, noise)
        self.train(training)
        return x, kept

    def sample(self, n: int, generator: torch.Generator | None = None, add_noise: bool = True) -> torch.Tensor:
        """n samples: points (n, 2), or images (n, 64) with intensities in [0, 1]; T network passes."""
        return self.as_output(self.sample_chain(n, generator, add_noise)[0])
