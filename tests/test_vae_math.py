"""The VAE's equations, checked against Monte-Carlo estimates and closed forms.

Everything runs in float64 with seeded generators, so a tolerance of a few
Monte-Carlo standard errors is a real check, not a flaky one.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from unimodel.models.vae import (
    discretized_logistic_log_prob,
    gaussian_kl,
    importance_weighted_bound,
    log_normal,
    reparameterize,
    reparameterize_uniform,
    uniform_kl,
)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_mc_close(samples: torch.Tensor, expected: torch.Tensor, n_se: float = 5.0) -> None:
    """The mean of ``samples`` over dim 0 equals ``expected`` within ``n_se`` standard errors."""
    mean = samples.mean(0)
    se = samples.std(0) / math.sqrt(samples.shape[0])
    assert torch.all((mean - expected).abs() <= n_se * se + 1e-9), (mean, expected, se)


# ------------------------------------------------------------------ Gaussian KL


@pytest.mark.parametrize("dim", [1, 2, 5, 16])
def test_gaussian_kl_equals_monte_carlo(dim):
    g = _gen(dim)
    mu = torch.randn(4, dim, generator=g, dtype=F64)  # (B, D)
    log_var = 0.8 * torch.randn(4, dim, generator=g, dtype=F64)
    noise = torch.randn(100_000, 4, dim, generator=g, dtype=F64)  # (N, B, D)
    z = reparameterize(mu, log_var, noise)
    log_ratio = log_normal(z, mu, log_var) - log_normal(z)  # (N, B): log q(z) - log p(z)
    kl = gaussian_kl(mu, log_var)
    assert kl.shape == (4,)
    assert torch.all(kl > 0)
    _assert_mc_close(log_ratio, kl)


def test_gaussian_kl_is_zero_at_the_prior():
    zero = torch.zeros(3, 7, dtype=F64)
    assert torch.equal(gaussian_kl(zero, zero), torch.zeros(3, dtype=F64))


def test_gaussian_kl_matches_torch_distributions():
    g = _gen(1)
    mu = 2 * torch.randn(10, 6, generator=g, dtype=F64)
    log_var = 2 * torch.randn(10, 6, generator=g, dtype=F64)
    expected = kl_divergence(Normal(mu, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, log_var), expected, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------ uniform KL


@pytest.mark.parametrize("dim", [1, 3, 8])
def test_uniform_kl_equals_monte_carlo(dim):
    g = _gen(10 + dim)
    center = torch.randn(4, dim, generator=g, dtype=F64)
    log_half_width = 0.5 * torch.randn(4, dim, generator=g, dtype=F64)
    u = torch.rand(100_000, 4, dim, generator=g, dtype=F64)
    z = reparameterize_uniform(center, log_half_width, u)
    log_q = -(math.log(2.0) + log_half_width).sum(-1)  # density of U(c - w, c + w), constant on its support
    log_ratio = log_q - log_normal(z)  # (N, B)
    _assert_mc_close(log_ratio, uniform_kl(center, log_half_width))


def test_uniform_kl_closed_form_for_one_dimension():
    # U(-1, 1) against N(0, 1): -log 2 + log(2 pi)/2 + (1/3)/2
    value = uniform_kl(torch.zeros(1, dtype=F64), torch.zeros(1, dtype=F64))
    assert value.item() == pytest.approx(-math.log(2) + 0.5 * math.log(2 * math.pi) + 1 / 6, rel=1e-12)


# ------------------------------------------------------------ reparameterization


def test_reparameterize_gradients_match_the_analytic_ones():
    g = _gen(2)
    mu = torch.tensor([0.7, -1.3, 0.0], dtype=F64, requires_grad=True)
    log_var = torch.tensor([0.2, -0.5, 1.0], dtype=F64, requires_grad=True)
    noise = torch.randn(200_000, 3, generator=g, dtype=F64)
    z = reparameterize(mu, log_var, noise)
    z.pow(2).mean(0).sum().backward()  # E[z^2] = mu^2 + sigma^2 per dimension
    assert torch.all(torch.isfinite(mu.grad)) and torch.all(torch.isfinite(log_var.grad))
    assert torch.all(log_var.grad.abs() > 0)
    # d/dmu E[z^2] = 2 mu, d/dlog_var E[z^2] = sigma^2
    torch.testing.assert_close(mu.grad, 2 * mu.detach(), atol=0.03, rtol=0)
    torch.testing.assert_close(log_var.grad, log_var.detach().exp(), atol=0.03, rtol=0.01)


def test_reparameterize_without_noise_draws_from_the_global_generator():
    mu, log_var = torch.full((50_000, 1), 3.0), torch.full((50_000, 1), math.log(4.0))
    torch.manual_seed(0)
    z = reparameterize(mu, log_var)
    assert z.mean().item() == pytest.approx(3.0, abs=0.05)
    assert z.std().item() == pytest.approx(2.0, abs=0.05)


def test_reparameterize_uniform_gradients_match_the_analytic_ones():
    g = _gen(3)
    a = torch.tensor([-1.0, 0.5, -3.0], dtype=F64, requires_grad=True)
    b = torch.tensor([2.0, 0.9, -1.0], dtype=F64, requires_grad=True)
    center, log_half_width = (a + b) / 2, torch.log((b - a) / 2)
    center.retain_grad()
    log_half_width.retain_grad()
    u = torch.rand(200_000, 3, generator=g, dtype=F64)
    z = reparameterize_uniform(center, log_half_width, u)
    assert torch.all(z >= a.detach()) and torch.all(z <= b.detach())
    z.pow(2).mean(0).sum().backward()  # E[z^2] = (a^2 + ab + b^2) / 3
    assert torch.all(torch.isfinite(a.grad)) and torch.all(a.grad != 0)
    a_, b_ = a.detach(), b.detach()
    torch.testing.assert_close(a.grad, (2 * a_ + b_) / 3, atol=0.03, rtol=0)  # d/da E[z^2]
    torch.testing.assert_close(b.grad, (a_ + 2 * b_) / 3, atol=0.03, rtol=0)  # d/db E[z^2]
    # in the model's own parameters: E[z^2] = c^2 + w^2/3
    w = (b_ - a_) / 2
    torch.testing.assert_close(center.grad, (a_ + b_), atol=0.03, rtol=0)
    torch.testing.assert_close(log_half_width.grad, 2 * w.pow(2) / 3, atol=0.03, rtol=0.01)


# ------------------------------------------------------ discretized logistic


LEVELS = 17


def test_discretized_logistic_sums_to_one_over_the_levels():
    g = _gen(4)
    n = 2000
    mean = torch.empty(n, 1, dtype=F64).uniform_(-60.0, 76.0, generator=g)  # far outside [0, 16] too
    log_scale = torch.empty(n, 1, dtype=F64).uniform_(-6.0, 4.0, generator=g)
    k = torch.arange(LEVELS).expand(n, LEVELS)  # (N, L)
    log_p = discretized_logistic_log_prob(k, mean, log_scale, LEVELS)
    assert log_p.shape == (n, LEVELS)
    assert torch.all(torch.isfinite(log_p) | (log_p == -math.inf))
    assert torch.all(log_p <= 1e-12)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(n, dtype=F64), rtol=0, atol=1e-9)


def test_discretized_logistic_far_mean_puts_the_mass_on_the_end_level():
    k = torch.arange(LEVELS)
    low = discretized_logistic_log_prob(k, torch.tensor(-40.0), torch.tensor(0.0), LEVELS)
    high = discretized_logistic_log_prob(k, torch.tensor(60.0), torch.tensor(0.0), LEVELS)
    assert low[0].exp().item() == pytest.approx(1.0, abs=1e-6)
    assert high[-1].exp().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(torch.isfinite(low)) and torch.all(torch.isfinite(high))


def test_discretized_logistic_matches_sigmoid_differences():
    g = _gen(5)
    mean = torch.empty(50, 1, dtype=F64).uniform_(-2.0, 18.0, generator=g)
    log_scale = torch.empty(50, 1, dtype=F64).uniform_(-1.0, 1.0, generator=g)  # moderate scales
    k = torch.arange(LEVELS, dtype=F64).expand(50, LEVELS)
    s = log_scale.exp()
    cdf_upper = torch.sigmoid((k + 0.5 - mean) / s)
    cdf_lower = torch.sigmoid((k - 0.5 - mean) / s)
    cdf_upper[:, -1] = 1.0  # the last level takes the upper tail
    cdf_lower[:, 0] = 0.0  # the first level takes the lower tail
    expected = cdf_upper - cdf_lower  # the naive form: fine for probabilities, cancels badly in the far tails
    log_p = discretized_logistic_log_prob(k, mean, log_scale, LEVELS)
    torch.testing.assert_close(log_p.exp(), expected, rtol=0, atol=1e-12)
    visible = expected > 1e-6  # where the naive logarithm is still accurate
    assert visible.sum() > 200
    torch.testing.assert_close(log_p[visible], expected[visible].log(), rtol=1e-8, atol=0)


# ------------------------------------------------- importance-weighted bound


class LinearGaussian:
    """p(z) = N(0, I_D), p(x|z) = N(W z + b, s^2 I_P), so p(x) = N(b, W W^T + s^2 I) exactly."""

    def __init__(self, seed: int = 6, d: int = 2, p: int = 3, s: float = 0.5) -> None:
        g = _gen(seed)
        self.W = torch.randn(p, d, generator=g, dtype=F64)  # (P, D)
        self.b = torch.randn(p, generator=g, dtype=F64)  # (P,)
        self.s = s
        self.x = self.b + 2.0 * torch.randn(4, p, generator=g, dtype=F64)  # (B, P) a few data points
        self.g = g

    def log_px(self) -> torch.Tensor:
        cov = self.W @ self.W.T + self.s**2 * torch.eye(len(self.b), dtype=F64)
        return MultivariateNormal(self.b, cov).log_prob(self.x)  # (B,)

    def posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact p(z|x) = N(m, S): S = (I + W^T W / s^2)^-1, m = S W^T (x - b) / s^2."""
        d = self.W.shape[1]
        S = torch.linalg.inv(torch.eye(d, dtype=F64) + self.W.T @ self.W / self.s**2)  # (D, D)
        m = (self.x - self.b) @ self.W @ S / self.s**2  # (B, D), S symmetric
        return m, S

    def log_px_given_z(self, z: torch.Tensor) -> torch.Tensor:
        mean = z @ self.W.T + self.b  # (..., B, P)
        return log_normal(self.x, mean, math.log(self.s**2))

    def bounds(self, k: int, repeats: int, q_shift: float, q_log_var_shift: float) -> torch.Tensor:
        """``repeats`` independent K-sample bounds per data point, (repeats, B), with a diagonal q."""
        m, S = self.posterior()
        mu = m + q_shift  # (B, D) deliberately off the posterior mean
        log_var = torch.log(torch.diagonal(S)) + q_log_var_shift  # (D,) and ignores the correlation
        log_var = log_var.expand_as(mu)
        eps = torch.randn(k, repeats, *mu.shape, generator=self.g, dtype=F64)  # (K, R, B, D)
        z = reparameterize(mu, log_var, eps)
        log_w_parts = (self.log_px_given_z(z), log_normal(z), log_normal(z, mu, log_var))  # each (K, R, B)
        bound = importance_weighted_bound(*(t.reshape(k, -1) for t in log_w_parts))  # (R * B,)
        return bound.reshape(repeats, -1)


def test_importance_weighted_bound_tightens_with_k_towards_log_px():
    model = LinearGaussian()
    log_px = model.log_px()  # (B,)
    repeats = {1: 40_000, 10: 8000, 100: 2000, 1000: 400}
    means, ses = {}, {}
    for k, r in repeats.items():
        bounds = model.bounds(k, r, q_shift=0.6, q_log_var_shift=0.8)  # a KL gap of about 8 nats at K = 1
        means[k] = bounds.mean(0)
        ses[k] = bounds.std(0) / math.sqrt(r)
    gap1 = log_px - means[1]
    # the ELBO (K = 1) is below log p(x), by clearly more than its standard error
    assert torch.all(gap1 > 10 * ses[1]), (gap1, ses[1])
    # the expected bound increases with K
    for small, large in [(1, 10), (10, 100), (100, 1000)]:
        assert torch.all(means[large] - means[small] > 3 * (ses[small] + ses[large])), (small, large, means)
    # ... stays below log p(x) up to noise, and approaches it
    assert torch.all(means[1000] <= log_px + 4 * ses[1000])
    assert torch.all((log_px - means[1000]).abs() < 0.01 * gap1), (log_px - means[1000], gap1)


@pytest.mark.parametrize("k", [1, 10, 100, 1000])
def test_importance_weighted_bound_is_exact_with_the_true_posterior(k):
    model = LinearGaussian(seed=7, d=2, p=4, s=0.3)
    m, S = model.posterior()
    L = torch.linalg.cholesky(S)
    eps = torch.randn(k, *m.shape, generator=model.g, dtype=F64)  # (K, B, D)
    z = m + eps @ L.T  # z ~ p(z|x) exactly, with its full covariance
    log_q = MultivariateNormal(m, S).log_prob(z)  # (K, B)
    bound = importance_weighted_bound(model.log_px_given_z(z), log_normal(z), log_q)
    assert bound.shape == (m.shape[0],)
    # every weight equals p(x), so every K, every draw gives log p(x): zero variance
    torch.testing.assert_close(bound, model.log_px(), rtol=0, atol=1e-9)


def test_importance_weighted_bound_of_equal_weights_is_that_weight():
    log_w = torch.full((50, 3), -7.25, dtype=F64)
    zero = torch.zeros_like(log_w)
    torch.testing.assert_close(importance_weighted_bound(log_w, zero, zero), torch.full((3,), -7.25, dtype=F64))
