"""The diffusion page's closer look at the bound: the two reverse variances, the pixel-level steps, the pixel-wise denoiser."""

from __future__ import annotations

import math

import pytest
import torch

from unimodel.chapters import diffusion as page
from unimodel.data import DIGIT_LEVELS
from unimodel.models.diffusion import Diffusion, DiffusionConfig, alpha_bars, linear_betas


def _model(steps: int = 50, seed: int = 0) -> Diffusion:
    torch.manual_seed(seed)
    return Diffusion(DiffusionConfig(data_dim=64, steps=steps, hidden=32, layers=1, time_dim=8)).eval()


def _levels(n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, DIGIT_LEVELS, (n, 64), generator=torch.Generator().manual_seed(seed))


class _Oracle(torch.nn.Module):
    """A noise predictor that knows x_0: it returns exactly the noise that was added."""

    def __init__(self, model: Diffusion, x0: torch.Tensor):
        super().__init__()
        self.model, self.x0 = model, x0

    def forward(self, x_t, t):
        bar, one_minus = self.model.alpha_bars[t - 1][:, None], self.model.one_minus_alpha_bars[t - 1][:, None]
        return (x_t - bar.sqrt() * self.x0) / one_minus.sqrt()


def test_beta_tilde_is_the_posterior_variance_and_step_one_keeps_beta_one():
    model = _model()
    betas = linear_betas(50).double()
    bars = alpha_bars(betas)
    tilde = page.reverse_variances(model, "beta_tilde").double()
    expected = (1 - bars[:-1]) / (1 - bars[1:]) * betas[1:]  # t = 2 .. T
    assert torch.allclose(tilde[1:], expected, rtol=1e-5)
    assert tilde[0].item() == pytest.approx(betas[0].item(), rel=1e-6)  # beta_tilde_1 = 0 is replaced, not used
    assert torch.all(tilde > 0) and torch.all(torch.isfinite(tilde))
    assert torch.all(tilde[1:] < page.reverse_variances(model, "beta")[1:].double())
    with pytest.raises(ValueError):
        page.reverse_variances(model, "learned")


def test_with_sigma_beta_the_terms_reproduce_the_models_own_bound():
    model, levels = _model(), _levels()
    own = model.nll_bound(levels, torch.Generator().manual_seed(3))
    terms = page.bound_terms(model, levels, torch.Generator().manual_seed(3))
    total = terms["prior"] + terms["kl"]["beta"].sum(1) + terms["decoder"]["net"]
    assert torch.allclose(total, own["total"], rtol=1e-5)
    assert torch.allclose(terms["kl"]["beta"][:, 1:], own["steps"], rtol=1e-5, atol=1e-5)
    assert torch.all(terms["kl"]["beta"][:, 0] == 0)  # t = 1 belongs to L_0


def test_with_the_true_noise_beta_tilde_pays_nothing_and_beta_pays_the_variance_mismatch():
    model, levels = _model(), _levels()
    model.net = _Oracle(model, model.as_input(levels))
    terms = page.bound_terms(model, levels, torch.Generator().manual_seed(0))
    assert terms["kl"]["beta_tilde"].abs().max().item() < 1e-3
    beta, tilde = page.reverse_variances(model, "beta").double(), page.reverse_variances(model, "beta_tilde").double()
    ratio = tilde[1:] / beta[1:]
    mismatch = 0.5 * 64 * (ratio - 1 - ratio.log())  # KL(N(m, beta_tilde) || N(m, beta)) over 64 pixels, t = 2 .. T
    assert torch.allclose(terms["kl"]["beta"][:, 1:].double().mean(0), mismatch, rtol=1e-3, atol=1e-4)
    assert torch.all(terms["kl"]["beta"][:, 1] > 1)  # at t = 2 beta_tilde is about half of beta: a real price


def test_the_two_variances_differ_by_the_mismatch_less_what_the_wider_gaussian_forgives():
    """KL_beta - KL_beta_tilde = d/2 (r - 1 - log r) - (1 - r) KL_beta_tilde, with r = beta_tilde / beta, at every t."""
    model, levels = _model(), _levels()
    terms = page.bound_terms(model, levels, torch.Generator().manual_seed(1))
    beta, tilde = page.reverse_variances(model, "beta").double(), page.reverse_variances(model, "beta_tilde").double()
    r = (tilde / beta)[1:]
    kl_beta, kl_tilde = terms["kl"]["beta"][:, 1:].double(), terms["kl"]["beta_tilde"][:, 1:].double()
    predicted = 0.5 * 64 * (r - 1 - r.log()) - (1 - r) * kl_tilde
    assert torch.allclose(kl_beta - kl_tilde, predicted, rtol=1e-3, atol=1e-3)
    # an untrained network guesses badly: there the wider Gaussian of beta is the cheaper one
    assert kl_beta.sum(1).mean() < kl_tilde.sum(1).mean()


def test_the_noise_passes_the_pixel_levels_where_the_schedule_says():
    spacing = 2 / (DIGIT_LEVELS - 1)
    paper = page.level_steps(alpha_bars(linear_betas(1000)))
    assert paper["spacing"] == pytest.approx(0.125)
    assert (paper["half"], paper["full"]) == (16, 36)
    bars = alpha_bars(linear_betas(1000))
    for key, threshold in (("half", spacing / 2), ("full", spacing)):
        t = paper[key]
        assert (1 - bars[t - 1]).sqrt() > threshold >= (1 - bars[t - 2]).sqrt()
    # a constant schedule: 1 - alpha_bar_t = 1 - (1 - b)^t passes s^2 at t = floor(log(1 - s^2) / log(1 - b)) + 1
    b, s = 1e-3, 0.2
    expected = math.floor(math.log(1 - s * s) / math.log(1 - b)) + 1
    assert page.first_step_above(alpha_bars(torch.full((500,), b, dtype=torch.float64)), s) == expected
    with pytest.raises(ValueError):
        page.first_step_above(alpha_bars(torch.full((10,), b, dtype=torch.float64)), s)


def test_the_pixelwise_denoiser_finds_the_noise_while_it_is_smaller_than_the_levels():
    model = Diffusion(DiffusionConfig(data_dim=64, steps=1000))
    levels = _levels(200)
    x0 = model.as_input(levels)
    prior = page.level_prior(levels)
    assert prior.shape == (64, DIGIT_LEVELS) and torch.allclose(prior.sum(1), torch.ones(64, dtype=torch.float64))
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    errors = {}
    for t in (1, 16, 300):
        x_t = model.q_sample(x0, torch.full((len(x0),), t), noise)
        errors[t] = ((page.pixelwise_eps(model, x_t, t, prior) - noise) ** 2).mean().item()
    assert errors[1] < 1e-6  # std 0.01 against levels 0.125 apart: the nearest level is the right one
    assert errors[16] > errors[1]  # at half a spacing the levels start to blur
    assert errors[300] < 1.5  # never wildly off


def test_bands_cover_every_step_once():
    for steps, half, full in ((1000, 16, 36), (100, 2, 4), (50, 2, 2)):
        bands = page._bands(steps, half, full)
        covered = [t for lo, hi in bands for t in range(lo, hi + 1)]
        assert covered == list(range(2, steps + 1)), (steps, bands)
