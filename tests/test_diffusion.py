"""DDPM: the schedule, the closed-form forward process, the loss, the reverse step and its link to the ELBO."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from unimodel import cli
from unimodel.models.diffusion import Diffusion, DiffusionConfig, alpha_bars, linear_betas
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit


def test_the_default_schedule_is_the_papers():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    bars = alpha_bars(betas)
    assert bars[0].item() == pytest.approx(1 - 1e-4)
    assert bars[-1].item() == pytest.approx(4.04e-5, rel=0.02)  # x_T is pure noise to 4 parts in 100,000
    assert torch.all(bars[1:] < bars[:-1])


def test_fewer_steps_keep_the_end_of_the_schedule():
    """Scaled by 1000 / T, a 100-step schedule destroys the data as thoroughly as the 1000-step one."""
    short, full = alpha_bars(linear_betas(100))[-1].item(), alpha_bars(linear_betas(1000))[-1].item()
    assert short < 1e-4 and full < 1e-4  # sqrt(alpha_bar_T) < 0.01: x_T keeps under 1% of x_0
    assert alpha_bars(linear_betas(100, 1e-4 / 10, 0.02 / 10))[-1].item() > 0.3  # unscaled, 100 steps leave most of x_0


def test_the_closed_form_matches_noising_step_by_step():
    """x_t from q(x_t | x_0) in one go has the distribution of t single noising steps."""
    model = Diffusion(DiffusionConfig(steps=1000))
    generator = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[1.5, -0.5]]).expand(20_000, 2)
    for t in (1, 10, 250, 1000):
        x = x0.clone()
        for beta in model.betas[:t]:
            x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape, generator=generator)  # q(x_t | x_{t-1})
        direct = model.q_sample(x0, torch.full((len(x0),), t), torch.randn(x0.shape, generator=generator))
        for samples in (x, direct):
            assert torch.allclose(samples.mean(0), model.alpha_bars[t - 1].sqrt() * x0[0], atol=0.02)
            assert torch.allclose(samples.std(0), (1 - model.alpha_bars[t - 1]).sqrt().expand(2), atol=0.02)


class _Oracle(torch.nn.Module):
    """A noise predictor that knows x_0: it returns exactly the noise that was added."""

    def __init__(self, model: Diffusion, x0: torch.Tensor):
        super().__init__()
        self.alpha_bars, self.one_minus_alpha_bars, self.x0 = model.alpha_bars, model.one_minus_alpha_bars, x0

    def forward(self, x_t, t):
        alpha_bar, one_minus = self.alpha_bars[t - 1][:, None], self.one_minus_alpha_bars[t - 1][:, None]
        return (x_t - alpha_bar.sqrt() * self.x0) / one_minus.sqrt()


def test_the_loss_is_zero_when_the_network_predicts_the_true_noise():
    model = Diffusion(DiffusionConfig())
    x0, noise = torch.randn(64, 2), torch.randn(64, 2)
    t = torch.randint(1, 1001, (64,))
    assert model.loss(x0, t, noise).item() > 0.1  # an untrained network
    model.net = _Oracle(model, x0)
    assert model.loss(x0, t, noise).item() == pytest.approx(0.0, abs=1e-8)


def test_the_reverse_mean_with_the_true_noise_is_the_posterior_mean():
    """mu_theta with eps_theta = eps equals the mean of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 7)."""
    model = Diffusion(DiffusionConfig(steps=1000))
    x0, noise = torch.randn(8, 2), torch.randn(8, 2)
    for t in (2, 50, 999):
        x_t = model.q_sample(x0, torch.full((8,), t), noise)
        assert torch.allclose(model.reverse_step(x_t, t, noise, None), model.posterior_mean(x0, x_t, t), atol=1e-5)


def test_each_step_of_the_bound_is_a_weighted_noise_error():
    """KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) with equal variances beta_t is lambda_t ||eps - eps_theta||^2, up to a constant."""
    model = Diffusion(DiffusionConfig(steps=1000))
    x0, noise, guess = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    weights = model.elbo_weights()
    for t in (2, 100, 1000):
        x_t = model.q_sample(x0, torch.full((4,), t), noise)
        sigma = model.betas[t - 1].sqrt()
        q = torch.distributions.Normal(model.posterior_mean(x0, x_t, t), sigma)
        p = torch.distributions.Normal(model.reverse_step(x_t, t, guess, None), sigma)
        kl = torch.distributions.kl_divergence(q, p).sum(1)
        assert torch.allclose(kl, weights[t - 1] * (noise - guess).pow(2).sum(1), rtol=1e-3)
    assert weights[0] > 40 * weights[-1]  # 0.50 against 0.0102: the bound weighs the least noisy steps most


def test_with_the_true_noise_the_bound_is_only_the_variance_mismatch():
    """An oracle noise predictor hits every posterior mean: each KL keeps only the cost of sigma_t^2 = beta_t against beta~_t."""
    model = Diffusion(DiffusionConfig(data_dim=64, steps=100))
    levels = torch.randint(0, 17, (5, 64), generator=torch.Generator().manual_seed(0))
    model.net = _Oracle(model, model.as_input(levels))
    bound = model.nll_bound(levels, torch.Generator().manual_seed(1))
    betas, one_minus = model.betas.double(), model.one_minus_alpha_bars.double()
    posterior_var = one_minus[:-1] / one_minus[1:] * betas[1:]  # beta~_t for t = 2 .. T
    mismatch = 0.5 * 64 * (torch.log(betas[1:] / posterior_var) + posterior_var / betas[1:] - 1)
    assert torch.allclose(bound["steps"].double(), mismatch.expand(5, -1).float().double(), rtol=1e-3, atol=1e-4)
    # the decoder's mean is x_0 itself: a pixel loses the Gaussian's mass beyond half a bin (1/16) on each side, on one side at the ends
    inside = torch.distributions.Normal(0.0, model.betas[0].sqrt()).cdf(torch.tensor(1 / 16))
    edge = (levels == 0) | (levels == 16)
    decoder = -torch.where(edge, inside.log(), (2 * inside - 1).log()).sum(1)
    assert torch.allclose(bound["decoder"], decoder, rtol=1e-4)
    prior = 0.5 * (model.alpha_bars[-1] * model.as_input(levels) ** 2 + one_minus[-1] - 1 - torch.log(one_minus[-1])).sum(1)
    assert torch.allclose(bound["prior"], prior.float(), atol=1e-4)
    assert torch.allclose(bound["total"], bound["prior"] + bound["steps"].sum(1) + bound["decoder"])


def test_the_bound_is_for_images_only():
    with pytest.raises(ValueError, match="images"):
        Diffusion(DiffusionConfig()).nll_bound(torch.zeros(2, 2))


def test_sampling_is_seeded_and_the_noise_term_matters():
    set_seed(0)
    model = Diffusion(DiffusionConfig(steps=50))
    a = model.sample(16, torch.Generator().manual_seed(3))
    b = model.sample(16, torch.Generator().manual_seed(3))
    assert a.shape == (16, 2) and torch.equal(a, b)
    assert not torch.equal(a, model.sample(16, torch.Generator().manual_seed(3), add_noise=False))


def test_images_come_out_as_intensities():
    set_seed(0)
    model = Diffusion(DiffusionConfig(data_dim=64, steps=30, hidden=32, layers=1))
    images = model.sample(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 64) and images.min() >= 0 and images.max() <= 1
    x, kept = model.sample_chain(3, torch.Generator().manual_seed(0), keep=(30, 1))
    assert sorted(kept) == [1, 30] and kept[30][0].shape == (3, 64) and x.shape == (3, 64)


def test_a_short_run_lowers_the_loss_on_the_ring():
    set_seed(0)
    model = Diffusion(DiffusionConfig(steps=100, hidden=64, layers=2))
    data = (torch.randn(10_000, 2) * 0.05 + torch.tensor([1.0, 0.0]),)
    config = TrainConfig(epochs=3, batch_size=250, optimizer="adam", lr=2e-3, patience=0, device="cpu")
    history = fit(model, data, config, progress=False).history
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]


@pytest.mark.parametrize(
    "changes, message",
    [({"data_dim": 3}, "data_dim"), ({"steps": 0}, "positive"), ({"time_dim": 7}, "even"), ({"beta_start": 0.1}, "beta_start"), ({"steps": 20}, "more steps")],
)
def test_bad_configs_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        DiffusionConfig(**changes)


def test_the_config_round_trips():
    config = DiffusionConfig(data_dim=64, steps=200)
    assert DiffusionConfig(**asdict(config)) == config


def test_cli_trains_samples_and_scores_a_diffusion_model_on_the_ring(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "diffusion", "--dataset", "ring", "--steps", "50", "--hidden", "32", "--epochs", "1", "--device", "cpu", "--out", str(out)]) == 0
    assert cli.main(["sample", str(out), "--n", "10", "--out", str(tmp_path / "points.npy")]) == 0
    assert np.load(tmp_path / "points.npy").shape == (10, 2)
    capsys.readouterr()
    assert cli.main(["eval", str(out)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["samples"] == 2500 and 0 <= scores["modes"] <= 8
