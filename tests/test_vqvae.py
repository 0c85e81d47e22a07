"""The VQ-VAE tokenizer: nearest-code quantization and its straight-through gradient, the two VQ losses, the model's shapes, dead-code restarts, a short training run."""

from __future__ import annotations

import pytest
import torch

from unimodel.data import digits_splits
from unimodel.models.vqvae import VQVAE, VQVAEConfig, quantize, reconstruct, vq_losses
from unimodel.recipes.vqvae import SPEC, code_usage, evaluate
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit


@pytest.fixture(scope="module")
def splits():
    return digits_splits()


def _model(seed=0, **config) -> VQVAE:
    set_seed(seed)
    return VQVAE(VQVAEConfig(**{"hidden": 16, **config})).eval()


# ------------------------------------------------------------------ quantization


CODEBOOK = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-2.0, -2.0]])


def test_quantize_picks_the_nearest_entry_of_a_hand_made_codebook():
    z_e = torch.tensor([[[0.1, -0.1], [0.9, 0.2]], [[-0.2, 0.8], [-1.5, -1.0]]])  # (2, 2, C=2)
    z_q, k = quantize(z_e, CODEBOOK)
    assert k.tolist() == [[0, 1], [2, 3]]
    assert k.shape == z_e.shape[:-1] and k.dtype == torch.int64
    assert z_q.shape == z_e.shape
    # the forward pass gives exactly the chosen entries
    torch.testing.assert_close(z_q, CODEBOOK[k], atol=1e-6, rtol=0)
    # brute force over random vectors
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 7, 2, generator=g) * 2
    _, k = quantize(z, CODEBOOK)
    brute = ((z[..., None, :] - CODEBOOK) ** 2).sum(-1).argmin(-1)
    assert torch.equal(k, brute)


def test_quantize_passes_the_gradient_straight_through_to_z_e():
    g = torch.Generator().manual_seed(1)
    z_e = torch.randn(3, 4, 2, generator=g).requires_grad_()
    codebook = CODEBOOK.clone().requires_grad_()
    z_q, _ = quantize(z_e, codebook)
    upstream = torch.randn(z_q.shape, generator=g)
    (z_q * upstream).sum().backward()
    torch.testing.assert_close(z_e.grad, upstream)  # as if quantization were the identity
    assert codebook.grad is None  # the codebook learns from its own loss, not through z_q


# ------------------------------------------------------------------ the two VQ losses


def test_vq_losses_by_hand():
    z_e = torch.tensor([[[1.0, 2.0], [0.0, 0.5]], [[3.0, -1.0], [0.0, 0.0]]])  # (B=2, N=2, C=2)
    e_k = torch.tensor([[[0.0, 2.0], [1.0, 0.5]], [[3.0, 1.0], [0.0, 0.0]]])
    codebook, commitment = vq_losses(z_e, e_k)
    # image 0: (1-0)^2 + 0 + (0-1)^2 + 0 = 2; image 1: 0 + (-1-1)^2 + 0 + 0 = 4
    assert codebook.tolist() == [2.0, 4.0]
    assert commitment.tolist() == [2.0, 4.0]  # the same value, with the gradient going elsewhere
    # per image, summed over every dimension after the first
    z4 = torch.arange(24.0).reshape(2, 2, 3, 2)
    c4, _ = vq_losses(z4, torch.zeros_like(z4))
    torch.testing.assert_close(c4, (z4**2).flatten(1).sum(1))


def test_codebook_loss_moves_only_the_codebook_and_commitment_only_the_encoder():
    g = torch.Generator().manual_seed(2)
    z_e = torch.randn(2, 3, 2, generator=g).requires_grad_()
    codebook = torch.randn(4, 2, generator=g).requires_grad_()
    _, k = quantize(z_e, codebook)
    codebook_loss, commitment = vq_losses(z_e, codebook[k])

    codebook_loss.sum().backward(retain_graph=True)
    assert z_e.grad is None  # sg[z_e]
    assert codebook.grad is not None
    expected = torch.zeros_like(codebook).index_add_(0, k.flatten(), 2 * (codebook[k] - z_e).detach().reshape(-1, 2))
    torch.testing.assert_close(codebook.grad, expected)
    unused = torch.ones(4, dtype=torch.bool)
    unused[k.flatten()] = False
    assert (codebook.grad[unused] == 0).all()  # an entry no vector chose gets no gradient

    codebook.grad = None
    commitment.sum().backward()
    assert codebook.grad is None  # sg[e_k]
    torch.testing.assert_close(z_e.grad, 2 * (z_e - codebook[k]).detach())


def test_the_total_loss_weighs_the_commitment_by_beta(splits):
    model = _model(beta=0.5)
    with torch.no_grad():
        parts = model.losses(splits.train.x[:6])
    assert set(parts) == {"loss", "reconstruction", "codebook", "commitment"}
    assert all(v.shape == (6,) for v in parts.values())
    torch.testing.assert_close(parts["loss"], parts["reconstruction"] + parts["codebook"] + 0.5 * parts["commitment"])
    torch.testing.assert_close(parts["codebook"], parts["commitment"])  # equal values, different gradients
    assert (parts["reconstruction"] > 0).all()
    loss, metrics = model((splits.train.x[:6],))
    assert loss.item() == pytest.approx(parts["loss"].mean().item(), rel=1e-5)
    assert set(metrics) == {"reconstruction", "codebook", "commitment"}


# ------------------------------------------------------------------ the model


@pytest.mark.parametrize("grid", [1, 2, 4, 8])
def test_encode_and_decode_shapes_and_ranges(splits, grid):
    model = _model(grid=grid, codebook_size=8)
    x = splits.train.x[:5]
    codes = model.encode(x)
    assert codes.shape == (5, grid * grid) and codes.dtype == torch.int64
    assert model.config.codes == grid * grid
    assert codes.min() >= 0 and codes.max() < 8
    assert model.encode_vectors(x).shape == (5, grid, grid, model.config.code_dim)
    images = model.decode(codes)
    assert images.shape == (5, 64)
    assert images.min() >= 0 and images.max() <= 1
    assert model.decode_vectors(model.encode_vectors(x)).shape == (5, 64, 17)
    assert reconstruct(model, x).shape == (5, 64)


def test_decode_is_deterministic_and_encode_has_no_gradient(splits):
    model = _model()
    codes = torch.randint(32, (4, 16), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.decode(codes), model.decode(codes))
    assert not model.encode(splits.train.x[:2]).requires_grad and not model.decode(codes).requires_grad
    # the same code gives the same pixels in every image it appears in
    twice = model.decode(torch.cat([codes[:1], codes[:1]]))
    assert torch.equal(twice[0], twice[1])


@pytest.mark.parametrize(
    "bad",
    [{"grid": 3}, {"grid": 16}, {"grid": 0}, {"beta": -0.1}, {"restart_after": -1.0}, {"codebook_size": 0}, {"code_dim": 0}, {"hidden": 0}],
)
def test_config_validation(bad):
    with pytest.raises(ValueError):
        VQVAEConfig(**bad)


def test_code_usage_counts_the_codes_and_their_perplexity(splits, monkeypatch):
    model = _model(codebook_size=8)
    x = splits.train.x[:4]
    monkeypatch.setattr(model, "encode", lambda x: torch.tensor([[0, 0, 1, 1]] * len(x)))
    assert code_usage(model, x) == {"codes_used": 2, "perplexity": pytest.approx(2.0)}
    monkeypatch.setattr(model, "encode", lambda x: torch.zeros(len(x), 16, dtype=torch.int64))
    assert code_usage(model, x) == {"codes_used": 1, "perplexity": pytest.approx(1.0)}


# ------------------------------------------------------------------ dead-code restarts


def _collapsed(restart_after: float, seed: int = 0) -> VQVAE:
    """A model whose codebook has one entry at the encoder outputs and the others far away: every output chooses code 0."""
    model = _model(seed=seed, codebook_size=8, restart_after=restart_after)
    with torch.no_grad():
        model.codebook.copy_(100.0 + torch.randn(8, model.config.code_dim, generator=torch.Generator().manual_seed(seed)))
        model.codebook[0] = 0.0
    return model


@pytest.mark.parametrize("restart_after", [0.5, 0.05])
def test_dead_codes_are_moved_onto_encoder_outputs(splits, restart_after):
    model = _collapsed(restart_after)
    x = splits.train.x[:64]
    assert code_usage(model, x)["codes_used"] == 1
    model.train()
    # the running use of an unchosen code decays by 0.99 a call from a fair share 1/K: below restart_after / K after log(r)/log(0.99) calls
    calls = 0
    with torch.no_grad():
        while code_usage(model, x)["codes_used"] == 1 and calls < 400:
            model.losses(x)
            calls += 1
    assert code_usage(model, x)["codes_used"] > 1
    needed = int(torch.tensor(restart_after).log() / torch.tensor(0.99).log())
    assert needed - 2 <= calls <= needed + 2
    # the restarted entries sit on encoder outputs of the batch: no longer far away
    assert (model.codebook.detach().norm(dim=1) < 50).sum() > 1


def test_no_restart_with_restart_after_zero_or_in_eval_mode(splits):
    x = splits.train.x[:64]
    for model, mode in ((_collapsed(0.0), True), (_collapsed(0.5), False)):
        before = model.codebook.detach().clone()
        model.train(mode)
        with torch.no_grad():
            for _ in range(100):
                model.losses(x)
        assert torch.equal(model.codebook.detach(), before)
        assert code_usage(model, x)["codes_used"] == 1


# ------------------------------------------------------------------ training


def test_a_short_run_lowers_the_reconstruction_loss(splits):
    small = splits.first(200)
    model = _model(hidden=32)
    with torch.no_grad():
        before = SPEC.validate(model, small)
    fit(model, (small.train.x,), TrainConfig(epochs=5, lr=2e-3, optimizer="adam", batch_size=32, device="cpu", patience=0), progress=False)
    after = SPEC.validate(model, small)
    assert after < before - 10, (before, after)  # nats per image
    # and the scores are what the docs say they are
    scores = evaluate(model, small)
    assert set(scores) == {"nll", "pixel_mae", "codes_used", "perplexity", "judge_real", "judge_reconstructed", "bits_per_image", "images"}
    assert scores["images"] == 447 and scores["bits_per_image"] == 16 * 5
    assert scores["nll"] == pytest.approx(model.losses(small.test.x)["reconstruction"].mean().item(), rel=1e-5)
    assert 0 <= scores["pixel_mae"] <= 1 and 1 <= scores["codes_used"] <= 32
    assert 1 <= scores["perplexity"] <= scores["codes_used"] + 1e-6
    assert SPEC.sample is None
