"""Variational autoencoder (Kingma & Welling 2013, arXiv 1312.6114).

Read top to bottom: the posterior family and the reparameterization trick,
the closed-form KL, the likelihood of a pixel, the ELBO, the importance-
weighted bound of Burda et al. (2015, arXiv 1509.00519) used to estimate
log p(x), and the model that puts them together.

Legend for shape comments: B batch, D latent dimension, P pixels per image
(64 for the 8x8 digits), L levels per pixel (17), K importance samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import DIGIT_LEVELS

LIKELIHOODS = ("logistic", "categorical", "gaussian")


@dataclass
class VAEConfig:
    data_dim: int = 64  # pixels per image (8x8 digits)
    levels: int = DIGIT_LEVELS  # values a pixel can take (0..16)
    latent_dim: int = 16  # D, size of z
    hidden_dim: int = 256  # width of the encoder's and decoder's hidden layers
    posterior: str = "gaussian"  # q(z|x): "gaussian" N(mu, sigma^2) or "uniform" U(mu - w, mu + w)
    likelihood: str = "logistic"  # p(x|z): "logistic" (discretized), "categorical" over levels, or "gaussian" (L2 loss)
    kl_weight: float = 1.0  # weight of the KL term; 0 trains a plain (L2 or CE) autoencoder
    train_samples: int = 1  # K for the training bound: 1 is the ELBO, >1 the IWAE bound
    obs_std: float = 0.1  # std of p(x|z) for the "gaussian" likelihood, pixels scaled to [0, 1]

    def __post_init__(self) -> None:
        for name in ("data_dim", "levels", "latent_dim", "hidden_dim", "train_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.posterior not in ("gaussian", "uniform"):
            raise ValueError(f"posterior must be 'gaussian' or 'uniform', got {self.posterior!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")
        if not (self.kl_weight >= 0 and self.obs_std > 0):  # also rejects NaN
            raise ValueError("kl_weight must be >= 0 and obs_std > 0")


# --8<-- [start:reparameterize]
def reparameterize(mu: torch.Tensor, log_var: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Draw z ~ N(mu, sigma^2) as a differentiable function of mu and sigma."""
    if noise is None:
        noise = torch.randn_like(mu)  # ε ~ N(0, I)
    sigma = torch.exp(0.5 * log_var)
    return mu + sigma * noise  # z = μ + σ ⊙ ε


# --8<-- [end:reparameterize]


# --8<-- [start:reparameterize-uniform]
def reparameterize_uniform(center: torch.Tensor, log_half_width: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Draw z ~ U(a, b) with a = center - w, b = center + w, differentiably."""
    if noise is None:
        noise = torch.rand_like(center)  # u ~ U(0, 1)
    half_width = torch.exp(log_half_width)
    a, b = center - half_width, center + half_width
    return a + (b - a) * noise  # z = a + (b - a)·u


# --8<-- [end:reparameterize-uniform]


# --8<-- [start:gaussian-kl]
def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag sigma^2) || N(0, I) ), summed over the last dimension."""
    # D_KL = 1/2 · ∑_j (μ_j² + σ_j² - log σ_j² - 1)
    return 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1).sum(-1)


# --8<-- [end:gaussian-kl]


def uniform_kl(center: torch.Tensor, log_half_width: torch.Tensor) -> torch.Tensor:
    """KL( U(c - w, c + w) || N(0, I) ), summed over the last dimension.

    Per dimension: -H(q) - E_q[log N(z)] = -log 2w + log(2 pi)/2 + (c^2 + w^2/3)/2.
    """
    half_width = log_half_width.exp()
    per_dim = -(math.log(2.0) + log_half_width) + 0.5 * math.log(2 * math.pi) + 0.5 * (center.pow(2) + half_width.pow(2) / 3)
    return per_dim.sum(-1)


def log_normal(z: torch.Tensor, mu: torch.Tensor | float = 0.0, log_var: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(z; mu, diag sigma^2), summed over the last dimension."""
    log_var = torch.as_tensor(log_var, dtype=z.dtype, device=z.device)
    return -0.5 * (math.log(2 * math.pi) + log_var + (z - mu).pow(2) / log_var.exp()).sum(-1)


def log_uniform(z: torch.Tensor, center: torch.Tensor, log_half_width: torch.Tensor) -> torch.Tensor:
    """log U(z; c - w, c + w), summed over the last dimension (-inf outside the box)."""
    # z = a + (b - a) u can round to just outside [a, b] in float32: allow for it
    inside = ((z - center).abs() <= log_half_width.exp() * (1 + 1e-5) + 1e-6).all(-1)
    log_density = -(math.log(2.0) + log_half_width).sum(-1)
    return torch.where(inside, log_density, torch.full_like(log_density, -math.inf))


# --8<-- [start:discretized-logistic]
def discretized_logistic_log_prob(k: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, levels: int) -> torch.Tensor:
    """log P(x = k), k in 0..levels-1, for a logistic(mean, s) rounded to the nearest integer.

    The end levels take the tails: P(0) = sigma((0.5 - mean)/s), P(L-1) = 1 - sigma((L - 1.5 - mean)/s).
    All arguments broadcast against each other.
    """
    inv_s = torch.exp(-log_scale)
    upper = (k + 0.5 - mean) * inv_s  # a = (k + 1/2 - μ) / s
    lower = (k - 0.5 - mean) * inv_s  # b = (k - 1/2 - μ) / s
    # σ(a) - σ(b) = σ(a)·σ(-b)·(1 - exp(-1/s)), in log space; the end levels drop a factor
    log_p = torch.where(k < levels - 1, F.logsigmoid(upper), 0.0)
    log_p = log_p + torch.where(k > 0, F.logsigmoid(-lower), 0.0)
    return log_p + torch.where((k > 0) & (k < levels - 1), torch.log(-torch.expm1(-inv_s)), 0.0)


# --8<-- [end:discretized-logistic]


# --8<-- [start:importance-sampling]
def importance_weighted_bound(log_px_given_z: torch.Tensor, log_pz: torch.Tensor, log_qz: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) from K samples z_k ~ q(z|x); inputs (K, B), output (B,).

    A lower bound on log p(x) in expectation that tightens as K grows; K = 1 is the ELBO.
    """
    log_w = log_px_given_z + log_pz - log_qz  # log w_k = log p_θ(x | z_k) + log p(z_k) - log q_φ(z_k | x)
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])  # log((1/K) ∑_k w_k)


# --8<-- [end:importance-sampling]


class VAE(nn.Module):
    """An MLP encoder q(z|x), an MLP decoder p(x|z) and the prior p(z) = N(0, I)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = nn.Sequential(
            nn.Linear(c.data_dim, c.hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(c.hidden_dim, c.hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(c.hidden_dim, 2 * c.latent_dim),
        )
        out_per_pixel = {"categorical": c.levels, "logistic": 2, "gaussian": 1}[c.likelihood]
        self.decoder = nn.Sequential(
            nn.Linear(c.latent_dim, c.hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(c.hidden_dim, c.hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(c.hidden_dim, c.data_dim * out_per_pixel),
        )

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Integer pixels 0..levels-1 to floats in [0, 1]."""
        return x.float() / (self.config.levels - 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x): (mu, log sigma^2) or (center, log half-width), each (B, D)."""
        loc, log_scale = self.encoder(self.scale(x)).chunk(2, dim=-1)  # (B, D), (B, D)
        return loc, log_scale

    def draw_noise(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
        """The parameter-free noise of the posterior: N(0, I) for gaussian, U(0, 1) for uniform."""
        draw = torch.randn if self.config.posterior == "gaussian" else torch.rand
        return draw(shape, generator=generator).to(next(self.parameters()).device)

    def sample_posterior(self, loc: torch.Tensor, log_scale: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.config.posterior == "gaussian":
            return reparameterize(loc, log_scale, noise)
        return reparameterize_uniform(loc, log_scale, noise)

    def kl(self, loc: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per image, (B,)."""
        if self.config.posterior == "gaussian":
            return gaussian_kl(loc, log_scale)
        return uniform_kl(loc, log_scale)

    def log_q(self, z: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        if self.config.posterior == "gaussian":
            return log_normal(z, loc, log_scale)
        return log_uniform(z, loc, log_scale)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Raw decoder output, (..., P, outputs per pixel)."""
        return self.decoder(z).unflatten(-1, (self.config.data_dim, -1))  # (..., P, O)

    def pixel_log_prob(self, k: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x_i = k_i | z); k (..., P) or (..., P, L) for every level at once."""
        if self.config.likelihood == "gaussian":
            raise ValueError("a gaussian likelihood has a density, not probabilities per level")
        out = self.decode(z)  # (..., P, O)
        if k.dim() > out.dim() - 1:  # all levels: align the pixel's parameters with the levels axis
            out = out.unsqueeze(-2)  # (..., P, 1, O)
        if self.config.likelihood == "categorical":
            # one free probability per level
            log_probs = F.log_softmax(out, dim=-1).expand(*k.shape, -1)
            return log_probs.gather(-1, k.unsqueeze(-1)).squeeze(-1)
        half = (self.config.levels - 1) / 2
        mean = half + half * out[..., 0]  # unbounded: a mean beyond an end level puts its mass there
        return discretized_logistic_log_prob(k, mean, out[..., 1], self.config.levels)

    def level_log_probs(self, z: torch.Tensor) -> torch.Tensor:
        """log p(x_i = k | z) for every pixel i and level k, (..., P, L)."""
        k = torch.arange(self.config.levels, device=z.device)
        return self.pixel_log_prob(k.expand(*z.shape[:-1], self.config.data_dim, -1), z)

    # --8<-- [start:log-likelihood]
    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z), summed over pixels; x (B, P) broadcasts against z (..., B, D)."""
        if self.config.likelihood == "gaussian":
            # log N(x; x̂(z), s²I): the L2 loss up to scale and a constant
            s = self.config.obs_std
            sq_error = (self.scale(x) - torch.sigmoid(self.decode(z)[..., 0])).pow(2).sum(-1)  # (..., B)
            return -0.5 * sq_error / s**2 - x.shape[-1] * (math.log(s) + 0.5 * math.log(2 * math.pi))
        # log p_θ(x | z) = ∑_i log p_θ(x_i | z): pixels independent given z
        k = x.expand(*z.shape[:-1], x.shape[-1])  # (..., B, P)
        return self.pixel_log_prob(k, z).sum(-1)  # (..., B)

    # --8<-- [end:log-likelihood]

    # --8<-- [start:elbo]
    def elbo(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The ELBO per image and its two terms, each (B,)."""
        loc, log_scale = self.encode(x)  # (B, D), (B, D)
        z = self.sample_posterior(loc, log_scale, noise)  # one sample per image
        reconstruction = self.log_px_given_z(x, z)  # log p_θ(x | z), a 1-sample estimate of the expectation
        kl = self.kl(loc, log_scale)  # D_KL(q_φ(z | x) ‖ p(z)) in closed form
        return {"elbo": reconstruction - kl, "reconstruction": reconstruction, "kl": kl}

    # --8<-- [end:elbo]

    def importance_weighted_bound(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The importance-weighted bound on log p(x) with K samples from q(z|x), per image (B,)."""
        loc, log_scale = self.encode(x)  # (B, D)
        z = self.sample_posterior(loc, log_scale, self.draw_noise((k, *loc.shape), generator))  # (K, B, D)
        return importance_weighted_bound(self.log_px_given_z(x, z), log_normal(z), self.log_q(z, loc, log_scale))

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss (mean negative bound, nats per image) and metrics to log."""
        x = batch[0]
        if self.config.train_samples > 1:
            bound = self.importance_weighted_bound(x, self.config.train_samples)
            return -bound.mean(), {"bound": bound.mean().item()}
        terms = self.elbo(x)
        loss = -(terms["reconstruction"] - self.config.kl_weight * terms["kl"]).mean()
        return loss, {name: value.mean().item() for name, value in terms.items()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images from the prior: z ~ N(0, I), decoded to the mean of p(x|z), floats in [0, 1], (n, P)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)  # (n, D)
        return self.decode_mean(z)

    @torch.no_grad()
    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z) as pixel intensities in [0, 1], (..., P)."""
        if self.config.likelihood == "gaussian":
            return torch.sigmoid(self.decode(z)[..., 0])
        levels = torch.arange(self.config.levels, device=z.device, dtype=z.dtype)
        return (self.level_log_probs(z).exp() * levels).sum(-1) / (self.config.levels - 1)  # E[x_i] / (L-1)
