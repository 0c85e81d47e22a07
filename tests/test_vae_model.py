"""The VAE on the 8x8 digits: shapes, config, a seeded reference value, the bounds."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from unimodel.data import digits_splits
from unimodel.models.vae import VAE, VAEConfig
from unimodel.recipes.vae import SPEC, evaluate, validation_score
from unimodel.training import TrainConfig, fit

B, D, P, L = 5, 4, 64, 17
LIKELIHOODS = ["logistic", "categorical", "gaussian"]
POSTERIORS = ["gaussian", "uniform"]
OUTPUTS_PER_PIXEL = {"logistic": 2, "categorical": L, "gaussian": 1}


@pytest.fixture(scope="module")
def splits():
    return digits_splits()


def _model(likelihood="logistic", posterior="gaussian", seed=0, **config) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(latent_dim=D, hidden_dim=16, likelihood=likelihood, posterior=posterior, **config))


# ------------------------------------------------------------------ shapes


@pytest.mark.parametrize("posterior", POSTERIORS)
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_shapes(likelihood, posterior, splits):
    model = _model(likelihood, posterior)
    x = splits.train.x[:B]
    loc, log_scale = model.encode(x)
    assert loc.shape == log_scale.shape == (B, D)
    z = model.sample_posterior(loc, log_scale)
    assert z.shape == (B, D)
    assert model.decode(z).shape == (B, P, OUTPUTS_PER_PIXEL[likelihood])
    assert model.decode(torch.zeros(3, B, D)).shape == (3, B, P, OUTPUTS_PER_PIXEL[likelihood])
    terms = model.elbo(x)
    assert set(terms) == {"elbo", "reconstruction", "kl"}
    for value in terms.values():
        assert value.shape == (B,) and torch.all(torch.isfinite(value))
    assert model.log_px_given_z(x, torch.zeros(7, B, D)).shape == (7, B)
    assert model.importance_weighted_bound(x, 6).shape == (B,)
    images = model.sample(9, torch.Generator().manual_seed(0))
    assert images.shape == (9, P)
    assert images.min() >= 0 and images.max() <= 1
    means = model.decode_mean(torch.zeros(2, 3, D))
    assert means.shape == (2, 3, P)
    assert means.min() >= 0 and means.max() <= 1
    loss, metrics = model((x, splits.train.y[:B]))
    assert loss.shape == () and torch.isfinite(loss)
    assert all(isinstance(v, float) for v in metrics.values())


@pytest.mark.parametrize("likelihood", ["logistic", "categorical"])
def test_level_log_probs_are_distributions_over_the_levels(likelihood):
    model = _model(likelihood)
    z = torch.randn(3, B, D, generator=torch.Generator().manual_seed(1))
    log_p = model.level_log_probs(z)
    assert log_p.shape == (3, B, P, L)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(3, B, P), rtol=0, atol=1e-5)
    # the per-level table agrees with the likelihood of a given image
    x = torch.randint(0, L, (B, P), generator=torch.Generator().manual_seed(2))
    expected = log_p.gather(-1, x.expand(3, B, P).unsqueeze(-1)).squeeze(-1).sum(-1)  # (3, B)
    torch.testing.assert_close(model.log_px_given_z(x, z), expected, rtol=1e-5, atol=1e-3)
    # decode_mean is the mean of that distribution
    levels = torch.arange(L, dtype=torch.float32)
    torch.testing.assert_close(model.decode_mean(z), (log_p.exp() * levels).sum(-1) / (L - 1))


def test_level_log_probs_refuses_the_gaussian_likelihood():
    """A density has no probability per level: a clear error, not an IndexError."""
    model = _model("gaussian")
    with pytest.raises(ValueError, match="density"):
        model.level_log_probs(torch.zeros(B, D))


# ------------------------------------------------------------------ the bounds


@pytest.mark.parametrize("posterior", POSTERIORS)
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_elbo_is_reconstruction_minus_kl(likelihood, posterior, splits):
    model = _model(likelihood, posterior)
    x = splits.train.x[:B]
    noise = model.draw_noise((B, D), torch.Generator().manual_seed(3))
    terms = model.elbo(x, noise)
    torch.testing.assert_close(terms["elbo"], terms["reconstruction"] - terms["kl"])
    assert torch.all(terms["kl"] >= 0)
    # the noise fixes the draw: the same noise gives the same terms
    again = model.elbo(x, noise)
    assert all(torch.equal(terms[name], again[name]) for name in terms)


@pytest.mark.parametrize("posterior", POSTERIORS)
def test_one_sample_importance_bound_has_the_mean_of_the_elbo(posterior, splits):
    model = _model("logistic", posterior, kl_weight=1.0)
    x = splits.train.x[:8].repeat(500, 1)  # (4000, P): many draws per image
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        iw = model.importance_weighted_bound(x, 1, generator)  # log p(x|z) + log p(z) - log q(z|x)
        elbo = model.elbo(x, model.draw_noise((len(x), D), generator))["elbo"]  # log p(x|z) - KL in closed form
    assert torch.all(torch.isfinite(iw))
    se = math.sqrt(iw.var().item() / len(iw) + elbo.var().item() / len(elbo))
    assert abs(iw.mean().item() - elbo.mean().item()) < 4 * se, (iw.mean(), elbo.mean(), se)
    # and more samples give a higher bound
    with torch.no_grad():
        iw50 = model.importance_weighted_bound(splits.train.x[:8].repeat(20, 1), 50, generator)
    assert iw50.mean().item() > iw.mean().item() + 4 * se


def test_uniform_posterior_density_is_finite_at_its_own_samples(splits):
    model = _model("logistic", "uniform")
    loc, log_scale = model.encode(splits.train.x[:200])
    loc = loc + 3.0  # centers away from 0, as after training: the rounding error grows with |c| / w
    for u in (0.0, 2.0**-24, 1.0 - 2.0**-24):
        z = model.sample_posterior(loc, log_scale, torch.full_like(loc, u))
        assert torch.all(torch.isfinite(model.log_q(z, loc, log_scale))), u


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    "bad",
    [
        {"latent_dim": -3},
        {"hidden_dim": 0},
        {"data_dim": -1},
        {"levels": 0},
        {"train_samples": 0},
        {"likelihood": "bernoulli"},
        {"posterior": "laplace"},
        {"kl_weight": -1.0},
        {"obs_std": 0.0},
    ],
)
def test_config_validation(bad):
    with pytest.raises(ValueError):
        VAEConfig(**bad)


def test_config_round_trip():
    config = VAEConfig(latent_dim=3, hidden_dim=40, posterior="uniform", likelihood="categorical", kl_weight=0.5, train_samples=4, obs_std=0.2)
    assert VAEConfig(**dataclasses.asdict(config)) == config
    assert VAEConfig(**dataclasses.asdict(VAEConfig())) == VAEConfig()
    assert SPEC.config_cls is VAEConfig and SPEC.model_cls is VAE


# ------------------------------------------------------------------ reference value


def test_seeded_reference_elbo(splits):
    # Obtained once with this very code (torch 2.13.0, CPU, float32):
    #   torch.manual_seed(0); model = VAE(VAEConfig(hidden_dim=32))
    #   noise = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    #   model.elbo(splits.train.x[:8], noise)["elbo"].mean().item()  -> -390.1820373535156
    # A change to the initialisation, the encoder/decoder layout or the
    # likelihood moves it; update it only for a deliberate change.
    torch.manual_seed(0)
    model = VAE(VAEConfig(hidden_dim=32))
    noise = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        terms = model.elbo(splits.train.x[:8], noise)
    assert terms["elbo"].mean().item() == pytest.approx(-390.1820373535156, rel=1e-4)
    assert terms["kl"].mean().item() == pytest.approx(0.16375800967216492, rel=1e-4)
    assert terms["elbo"][0].item() == pytest.approx(-345.82318115234375, rel=1e-4)


# ------------------------------------------------------------------ training and evaluation


@pytest.fixture(scope="module")
def trained(splits):
    torch.manual_seed(0)
    model = VAE(VAEConfig(hidden_dim=32))
    result = fit(
        model,
        (splits.train.x, splits.train.y),
        TrainConfig(epochs=4, device="cpu", seed=0),
        validate=lambda m: validation_score(m, splits.val.x),
        progress=False,
    )
    return model, result


def test_training_lowers_the_loss(trained):
    _, result = trained
    assert result.history[-1]["loss"] < result.history[0]["loss"] - 10  # nats per image
    assert result.best_val < result.history[0]["val"]


def test_evaluate_importance_sampling_is_tighter_than_the_elbo(trained, splits):
    model, _ = trained
    metrics = evaluate(model, splits.test.x[:100], k=64, seed=0)
    assert metrics["k"] == 64 and metrics["images"] == 100
    assert math.isfinite(metrics["nll_elbo"]) and math.isfinite(metrics["nll_is"])
    assert 0 < metrics["nll_is"] <= metrics["nll_elbo"] + 0.5
    assert evaluate(model, splits.test.x[:100], k=64, seed=0) == metrics  # seeded: reproducible
    spec_metrics = SPEC.evaluate(model, splits, k=4, seed=1)
    assert spec_metrics["images"] == len(splits.test)
