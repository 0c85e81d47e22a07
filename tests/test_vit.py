"""The Vision Transformer: patches, attention, what [CLS] sees, positions, config, seeding and a short training run."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F

from unimodel.data import digits_splits
from unimodel.models.layers import SelfAttention
from unimodel.models.vit import ViT, ViTConfig, patchify
from unimodel.recipes.classifier import accuracy
from unimodel.recipes.vit import train_defaults
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

SIDE, L, K = 8, 17, 10


@pytest.fixture(scope="module")
def splits():
    return digits_splits()


def _model(seed=0, **config) -> ViT:
    set_seed(seed)
    model = ViT(ViTConfig(**{"dim": 32, "depth": 2, "heads": 4, "dropout": 0.0, **config}))
    return model.eval()


def _images(n=4, seed=1) -> torch.Tensor:
    """n random images of integer pixel levels, (n, 64)."""
    return torch.randint(0, L, (n, SIDE * SIDE), generator=torch.Generator().manual_seed(seed))


def _unpatchify(patches: torch.Tensor, patch: int) -> torch.Tensor:
    """The test's own inverse of patchify, written with loops: (B, N, p * p) -> (B, 64)."""
    rows = SIDE // patch
    images = torch.zeros(len(patches), SIDE, SIDE, dtype=patches.dtype)
    for n in range(rows * rows):
        r, c = divmod(n, rows)
        images[:, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = patches[:, n].reshape(-1, patch, patch)
    return images.reshape(len(patches), -1)


# ------------------------------------------------------------------ patches


def test_patchify_by_hand():
    image = torch.arange(64).reshape(1, 8, 8)  # pixel (r, c) holds 8 r + c
    p4 = patchify(image, 4)
    assert p4.shape == (1, 4, 16)
    assert p4[0, 0].tolist() == [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]  # top-left
    assert p4[0, 1].tolist() == [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31]  # top-right
    assert p4[0, 2].tolist() == [32, 33, 34, 35, 40, 41, 42, 43, 48, 49, 50, 51, 56, 57, 58, 59]  # bottom-left
    assert p4[0, 3].tolist() == [36, 37, 38, 39, 44, 45, 46, 47, 52, 53, 54, 55, 60, 61, 62, 63]  # bottom-right
    p2 = patchify(image, 2)
    assert p2.shape == (1, 16, 4)
    assert p2[0, 0].tolist() == [0, 1, 8, 9]
    assert p2[0, 1].tolist() == [2, 3, 10, 11]  # the next patch to the right
    assert p2[0, 3].tolist() == [6, 7, 14, 15]  # the end of the first row of patches
    assert p2[0, 4].tolist() == [16, 17, 24, 25]  # the start of the second
    assert p2[0, 15].tolist() == [54, 55, 62, 63]


@pytest.mark.parametrize("patch", [1, 2, 4, 8])
def test_patchify_puts_every_pixel_in_its_patch(patch):
    images = _images(3)
    patches = patchify(images, patch)
    rows = SIDE // patch
    assert patches.shape == (3, rows * rows, patch * patch)
    square = images.reshape(3, SIDE, SIDE)
    for n in range(rows * rows):
        r, c = divmod(n, rows)
        assert torch.equal(patches[:, n], square[:, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch].reshape(3, -1))
    assert torch.equal(patchify(square, patch), patches)  # square or flat images alike
    assert torch.equal(_unpatchify(patches, patch), images)  # nothing lost, nothing repeated


def test_patchify_rejects_what_it_cannot_cut():
    with pytest.raises(ValueError, match="divide"):
        patchify(_images(), 3)
    with pytest.raises(ValueError, match="square"):
        patchify(torch.zeros(2, 60), 2)
    with pytest.raises(ValueError, match="square"):
        patchify(torch.zeros(2, 8, 4), 2)


# ------------------------------------------------------------------ attention


def test_attention_matches_torch_multi_head_attention():
    """The hand-written attention gives what nn.MultiheadAttention gives with the same weights: outputs and per-head weights."""
    torch.manual_seed(0)
    dim, heads = 16, 4
    ours = SelfAttention(dim, heads, dropout=0.0)
    theirs = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(ours.qkv.weight)
        theirs.in_proj_bias.copy_(ours.qkv.bias)
        theirs.out_proj.weight.copy_(ours.out.weight)
        theirs.out_proj.bias.copy_(ours.out.bias)
    h = torch.randn(3, 5, dim)
    out, weights = ours(h)
    expected_out, expected_weights = theirs(h, h, h, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, expected_out)
    torch.testing.assert_close(weights, expected_weights)


@pytest.mark.parametrize("patch", [2, 4])
def test_output_and_attention_shapes(patch):
    model = _model(patch=patch, depth=3)
    n = (SIDE // patch) ** 2
    x = _images(5)
    assert model.logits(x).shape == (5, K)
    maps = model.attention_maps(x)
    assert len(maps) == 3
    for weights in maps:
        assert weights.shape == (5, 4, n + 1, n + 1)
        assert torch.all(weights >= 0)
        torch.testing.assert_close(weights.sum(-1), torch.ones(5, 4, n + 1))  # every row is a distribution over the tokens
    similarity = model.position_similarity()
    assert similarity.shape == (n, n)
    torch.testing.assert_close(similarity.diagonal(), torch.ones(n))
    torch.testing.assert_close(similarity, similarity.T)
    assert torch.all(similarity.abs() <= 1 + 1e-6)


def test_attention_maps_are_taken_without_dropout_and_leave_the_mode():
    model = _model(dropout=0.5)
    model.train()
    x = _images()
    first, second = model.attention_maps(x), model.attention_maps(x)
    assert model.training  # left as it was
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)  # eval mode: no dropout, the same maps every time


# ------------------------------------------------------------------ the model


def test_the_encoder_input_is_cls_and_embedded_patches_plus_positions():
    model = _model(patch=4)
    x = _images()
    tokens = model.tokens(x)  # (B, T, D)
    pixels = x.float() / (L - 1)  # the model reads pixels in [0, 1]
    torch.testing.assert_close(tokens[:, 0], (model.cls[0, 0] + model.position[0, 0]).expand(len(x), -1))
    torch.testing.assert_close(tokens[:, 1:], model.embed(patchify(pixels, 4)) + model.position[:, 1:])


@pytest.mark.parametrize("patch", [2, 4])
def test_cls_sees_every_patch(patch):
    """Changing the pixels of one patch, any one, changes the class scores, which read [CLS] only."""
    model = _model(patch=patch)
    x = _images(1)
    base = model.logits(x)
    patches = patchify(x, patch)
    for n in range(patches.shape[1]):
        changed = patches.clone()
        changed[0, n] = (changed[0, n] + 5) % L
        assert not torch.allclose(model.logits(_unpatchify(changed, patch)), base, atol=1e-6), f"[CLS] does not see patch {n}"


def test_only_the_position_embeddings_tell_where_a_patch_is():
    """Shuffling the patches changes the logits; with the position embeddings zeroed, it does not (attention ignores order)."""
    model = _model(patch=2)
    with torch.no_grad():
        model.position.normal_(generator=torch.Generator().manual_seed(0))  # positions as different as trained ones get
    x = _images(3)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    shuffled = _unpatchify(patchify(x, 2)[:, order], 2)
    assert not torch.allclose(model.logits(shuffled), model.logits(x), atol=1e-4)
    with torch.no_grad():
        model.position.zero_()
    torch.testing.assert_close(model.logits(shuffled), model.logits(x))


def test_images_of_a_batch_do_not_mix():
    model = _model()
    x = _images(6)
    together = model.logits(x)
    torch.testing.assert_close(torch.cat([model.logits(x[i : i + 1]) for i in range(6)]), together, rtol=1e-5, atol=1e-5)


def test_loss_is_the_cross_entropy_and_metrics_are_floats():
    model = _model()
    x, y = _images(8), torch.arange(8) % K
    loss, metrics = model((x, y))
    assert loss.shape == () and loss.requires_grad
    logits = model.logits(x)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))
    assert set(metrics) == {"loss", "accuracy"} and all(isinstance(v, float) for v in metrics.values())
    assert metrics["loss"] == pytest.approx(loss.item())
    assert metrics["accuracy"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert 0 <= metrics["accuracy"] <= 1


def test_a_fresh_model_starts_near_the_uniform_guess():
    model = _model()
    loss, _ = model((_images(50), torch.arange(50) % K))  # every class equally often
    assert loss.item() == pytest.approx(math.log(K), rel=0.15)  # the cross-entropy of guessing 1 / K


def test_accuracy_helper_counts_right_answers_in_eval_mode():
    model = _model(dropout=0.3)
    model.train()
    x = _images(7)
    model.eval()
    predicted = model.logits(x).argmax(1)
    model.train()
    y = predicted.clone()
    y[:3] = (y[:3] + 1) % K  # 3 of 7 wrong
    assert accuracy(model, x, y, batch_size=2) == pytest.approx(4 / 7)
    assert model.training  # left as it was


# ------------------------------------------------------------------ config and seeding


@pytest.mark.parametrize(
    "bad",
    [
        {"patch": 3},
        {"patch": 5},
        {"patch": 0},
        {"heads": 3},  # 64 is not a multiple of 3
        {"dim": 30, "heads": 4},
        {"depth": 0},
        {"mlp_ratio": 0},
        {"classes": 1},
        {"levels": 1},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"dropout": float("nan")},
        {"positions": False, "learn_positions": False},  # nothing to keep fixed
    ],
)
def test_config_validation(bad):
    with pytest.raises(ValueError):
        ViTConfig(**bad)


def test_config_round_trip_and_train_defaults():
    config = ViTConfig(patch=4, dim=48, depth=2, heads=6, mlp_ratio=3, dropout=0.2)
    assert ViTConfig(**dataclasses.asdict(config)) == config
    assert ViTConfig().patches == 16 and config.patches == 4
    TrainConfig(**train_defaults("digits"))  # valid settings


@pytest.mark.parametrize(("config", "trained", "zero"), [({}, True, False), ({"learn_positions": False}, False, False), ({"positions": False}, False, True)])
def test_position_embeddings_learned_kept_random_or_absent(splits, config, trained, zero):
    """The default learns them; the control keeps the seeded random draw through training; the ablation has none."""
    model = _model(patch=4, dim=32, depth=1, **config)
    start = model.position.detach().clone()
    assert torch.equal(start, _model(patch=4, dim=32, depth=1).position.detach()) != zero  # the same random draw unless zeroed
    fit(model, (splits.train.x[:128], splits.train.y[:128]), TrainConfig(epochs=1, batch_size=64, lr=1e-2, seed=0, device="cpu"), progress=False)
    assert (not torch.equal(model.position, start)) == trained
    assert bool((model.position == 0).all()) == zero


def test_seeded_models_are_identical():
    x = _images()
    first, second, other = _model(seed=0), _model(seed=0), _model(seed=1)
    assert torch.equal(first.logits(x), second.logits(x))
    assert not torch.equal(first.logits(x), other.logits(x))


# ------------------------------------------------------------------ training


def test_a_short_fit_beats_chance_by_far(splits):
    model = _model(patch=4, dim=32, depth=2)
    result = fit(
        model,
        (splits.train.x, splits.train.y),
        TrainConfig(**{**train_defaults("digits"), "epochs": 8, "lr": 3e-3, "seed": 0, "device": "cpu"}),
        validate=lambda m: 1 - accuracy(m, splits.val.x, splits.val.y),
        progress=False,
    )
    assert 1 - result.best_val > 0.8  # chance is 0.1
    assert accuracy(model, splits.val.x, splits.val.y) == pytest.approx(1 - result.best_val)  # the best weights are kept
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_grid_similarity_separates_neighbouring_patches_from_the_others():
    from unimodel.chapters.vit import _grid_similarity

    side = 4  # 2x2 patches of an 8x8 digit
    cells = [divmod(i, side) for i in range(side * side)]
    adjacent = torch.tensor([[1.0 if abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 else 0.0 for b in cells] for a in cells])
    assert _grid_similarity(adjacent + torch.eye(side * side)) == (1.0, 0.0)  # the diagonal (a patch with itself) is left out


def test_the_initial_model_is_the_one_its_run_starts_from():
    from unimodel.chapters.vit import MODELS, _initial_model
    from unimodel.runtime import set_seed

    set_seed(3)
    expected = ViT(ViTConfig(**MODELS["vit-2"][1])).position
    assert torch.equal(_initial_model("vit-2", 3).position, expected)
