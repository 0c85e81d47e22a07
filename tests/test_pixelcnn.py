"""The PixelCNN: causal masks, an exact likelihood, seeded sampling, config, training and evaluation."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch

from unimodel.data import digits_splits
from unimodel.models.pixelcnn import MaskedConv2d, PixelCNN, PixelCNNConfig, causal_mask
from unimodel.recipes import model_spec
from unimodel.recipes.pixelcnn import SPEC, evaluate, nll
from unimodel.training import TrainConfig, fit

P, L = 64, 17
UNIFORM_NLL = P * math.log(L)  # nats per image of the model that gives every level the same probability


@pytest.fixture(scope="module")
def splits():
    return digits_splits()


def _model(seed=0, **config) -> PixelCNN:
    torch.manual_seed(seed)
    return PixelCNN(PixelCNNConfig(**{"channels": 8, "layers": 3, "first_kernel": 5, "dropout": 0.0, **config}))


# ------------------------------------------------------------------ the masks


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_mask_a_hides_the_centre_and_mask_b_keeps_it(kernel):
    a, b = causal_mask(kernel, "A"), causal_mask(kernel, "B")
    centre = kernel // 2
    assert a[centre, centre] == 0 and b[centre, centre] == 1
    for mask in (a, b):
        assert mask.shape == (kernel, kernel)
        assert torch.all(mask[:centre] == 1)  # the rows above
        assert torch.all(mask[centre, :centre] == 1)  # the pixels to the left
        assert torch.all(mask[centre, centre + 1 :] == 0)  # the pixels to the right
        assert torch.all(mask[centre + 1 :] == 0)  # the rows below
    assert torch.equal(b - a, torch.nn.functional.one_hot(torch.tensor(centre * kernel + centre), kernel * kernel).view(kernel, kernel).float())
    with pytest.raises(ValueError, match="mask_type"):
        causal_mask(3, "C")


def test_masked_convolution_ignores_the_masked_weights():
    torch.manual_seed(0)
    conv = MaskedConv2d(2, 3, 5, "A")
    x = torch.randn(4, 2, 8, 8)
    before = conv(x)
    with torch.no_grad():
        conv.weight.add_((1 - conv.mask) * 100.0)  # change only what the mask hides
    torch.testing.assert_close(conv(x), before)
    assert "mask" not in conv.state_dict()  # built from the config, not saved


def test_every_logit_depends_on_the_earlier_pixels_only():
    """d logits(pixel i) / d input is 0 at pixel i and after it (raster order), through the whole network."""
    model = _model(layers=4)
    x = (torch.rand(2, P, generator=torch.Generator().manual_seed(1)) * (L - 1)).requires_grad_(True)  # (B, P)
    logits = model.logits(x)  # (B, L, H, W)
    for i in range(P):
        row, col = divmod(i, 8)
        (grad,) = torch.autograd.grad(logits[0, :, row, col].sum(), x, retain_graph=True)  # (B, P)
        assert torch.all(grad[0, i:] == 0), f"pixel {i} sees pixel {i + grad[0, i:].nonzero()[0].item()}"
        assert torch.all(grad[1] == 0)  # nor another image of the batch
        if i > 0:
            assert grad[0, i - 1] != 0 if col > 0 else grad[0, i - 8] != 0  # the pixel to the left, or above


def test_the_probabilities_of_all_images_sum_to_one():
    """On 2x2 images with 3 levels, log p(x) is a distribution over all 81 images: exact, and normalised by the masks."""
    model = _model(data_dim=4, levels=3, kernel=3, first_kernel=3)
    images = torch.tensor(list(itertools.product(range(3), repeat=4)))  # (81, 4)
    with torch.no_grad():
        total = model.log_prob(images).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------ the likelihood and the loss


def test_loss_is_the_mean_negative_log_likelihood(splits):
    model = _model()
    x = splits.train.x[:16]
    log_p = model.log_prob(x)
    assert log_p.shape == (16,) and torch.all(torch.isfinite(log_p)) and torch.all(log_p < 0)
    loss, metrics = model((x, splits.train.y[:16]))
    assert loss.shape == ()
    torch.testing.assert_close(loss, -log_p.mean())
    assert metrics == {"nll": pytest.approx(loss.item())} and isinstance(metrics["nll"], float)


def test_a_fresh_model_is_near_uniform(splits):
    assert nll(_model(), splits.val.x) == pytest.approx(UNIFORM_NLL, rel=0.05)


# ------------------------------------------------------------------ sampling


def test_samples_are_images_on_the_levels_and_seeded():
    model = _model()
    model.train()
    state = torch.get_rng_state()
    images = model.sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)  # every draw came from the generator
    assert model.training  # left as it was
    assert images.shape == (5, P) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    levels = images * (L - 1)
    assert torch.equal(levels, levels.round())
    assert torch.equal(model.sample(5, torch.Generator().manual_seed(0)), images)
    assert not torch.equal(model.sample(5, torch.Generator().manual_seed(1)), images)
    assert torch.equal(SPEC.sample(model, 5, torch.Generator().manual_seed(0)), images)


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    "bad",
    [
        {"channels": 0},
        {"layers": -1},
        {"data_dim": 0},
        {"data_dim": 60},
        {"levels": 1},
        {"first_kernel": 4},
        {"kernel": 2},
        {"kernel": 0},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"dropout": math.nan},
    ],
)
def test_config_validation(bad):
    with pytest.raises(ValueError):
        PixelCNNConfig(**bad)


def test_config_round_trip():
    config = PixelCNNConfig(channels=12, layers=2, first_kernel=3, kernel=5, dropout=0.3)
    assert PixelCNNConfig(**dataclasses.asdict(config)) == config
    assert PixelCNNConfig(**dataclasses.asdict(PixelCNNConfig())) == PixelCNNConfig()
    assert model_spec("pixelcnn") is SPEC
    assert SPEC.config_cls is PixelCNNConfig and SPEC.model_cls is PixelCNN
    TrainConfig(**SPEC.train_defaults("digits"))  # valid settings


# ------------------------------------------------------------------ training and evaluation


@pytest.fixture(scope="module")
def trained(splits):
    model = _model(channels=16)
    result = fit(
        model,
        (splits.train.x[:500], splits.train.y[:500]),
        TrainConfig(**{**SPEC.train_defaults("digits"), "epochs": 4, "lr": 5e-3, "device": "cpu"}),
        validate=lambda m: SPEC.validate(m, splits),
        progress=False,
    )
    return model, result


def test_a_short_fit_beats_the_uniform_model(trained):
    _, result = trained
    assert result.best_val < UNIFORM_NLL - 40  # nats per image
    assert result.history[-1]["nll"] < result.history[0]["nll"]


def test_evaluate_is_the_exact_test_nll(trained, splits):
    model, _ = trained
    metrics = evaluate(model, splits, k=10, seed=3)  # the CLI's options are ignored: nothing is estimated
    assert math.isfinite(metrics["nll"]) and 0 < metrics["nll"] < UNIFORM_NLL
    assert metrics["nll"] == pytest.approx(-model.log_prob(splits.test.x).mean().item(), rel=1e-5)
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (P * math.log(2)))
    assert metrics["images"] == len(splits.test)
    assert evaluate(model, splits) == metrics
