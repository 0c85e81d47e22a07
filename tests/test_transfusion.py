"""The Transfusion-style model: patches by hand, what its attention lets each token see, the flow-matching loss against
the path's derivative, reading at t = 0, Euler drawing with guidance, what it cannot rank, its config, and a short run that
draws better than chance."""

from __future__ import annotations

import pytest
import torch

from unimodel import runs
from unimodel.data import digits_splits
from unimodel.experiments.flow import interpolate
from unimodel.models import unified
from unimodel.models.transfusion import IMAGE, Transfusion, TransfusionConfig, patches, unpatched
from unimodel.models.unified import BOI, NULL, TEXT_VOCAB, TOKEN_ID, caption_ids, generation_sequence, prompt_ids, understanding_sequence
from unimodel.recipes import unified as unified_recipe
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig

N = 16  # patches per image


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))


def _model(seed: int = 0, **config) -> Transfusion:
    set_seed(seed)
    return Transfusion(TransfusionConfig(**{"dim": 32, "depth": 2, "heads": 2, "dropout": 0.0, **config})).eval()


def _digits(B: int) -> tuple[torch.Tensor, torch.Tensor]:
    test = digits_splits().test
    return test.x[:B], test.y[:B]


# ------------------------------------------------------------------ patches


def test_patch_n_is_the_two_by_two_square_at_its_row_and_column():
    x = torch.arange(64.0)[None]  # pixel i holds i: row i // 8, column i % 8
    p = patches(x, 2)
    assert p.shape == (1, N, 4)
    for n in range(N):
        row, column = 2 * (n // 4), 2 * (n % 4)
        corners = [8 * row + column, 8 * row + column + 1, 8 * (row + 1) + column, 8 * (row + 1) + column + 1]
        assert p[0, n].tolist() == corners
    images = torch.rand(5, 64)
    assert torch.equal(unpatched(patches(images, 2), 2), images)


def test_an_image_position_holds_the_image_id_and_the_patches_replace_its_embedding():
    model = _model()
    x, y = _digits(2)
    assert torch.equal(model.codes(x), torch.full((2, N), IMAGE))
    ids, _ = understanding_sequence(model.codes(x), torch.tensor([0, 1]), caption_ids(y, torch.tensor([0, 1])))
    assert (ids[:, 2 : 2 + N] == len(TEXT_VOCAB) + IMAGE).all()
    h = model.embed_sequence(ids, x)
    expected = model.image_vectors(model.as_patches(x), torch.zeros(2))
    torch.testing.assert_close(h[:, 2 : 2 + N], expected)
    torch.testing.assert_close(h[:, :2], model.embed(ids[:, :2]))  # the text keeps its embeddings
    # a caption is read from the pixels: other pixels, other logits
    with torch.no_grad():
        a, b = model.logits(ids, x), model.logits(ids, x.flip(1))
    assert not torch.allclose(a[:, -3:], b[:, -3:])
    torch.testing.assert_close(a[:, :2], b[:, :2])  # what comes before the image never sees it


# ------------------------------------------------------------------ attention


def test_text_never_sees_the_future_and_the_patches_see_each_other():
    model = _model()
    x, y = _digits(1)
    langs = torch.tensor([0])
    ids, _ = understanding_sequence(model.codes(x), langs, caption_ids(y, langs))
    mask = model.attention_mask(ids)[0]
    image = range(2, 2 + N)
    for t in range(ids.shape[1]):
        for s in range(ids.shape[1]):
            assert bool(mask[t, s]) == (s <= t or (t in image and s in image)), (t, s)
    # the velocity: a patch changed at the end moves the first patch's velocity, never the prompt's states
    gen, _ = generation_sequence(prompt_ids(y, langs), model.codes(x))
    assert gen[0, 2] == TOKEN_ID[BOI]
    p = torch.randn(1, N, 4, generator=torch.Generator().manual_seed(0))
    q = p.clone()
    q[0, -1] += 1
    t = torch.tensor([0.5])
    with torch.no_grad():
        va, vb = model.velocity(gen, p, t), model.velocity(gen, q, t)
        sa = model.states(model.embed_sequence(gen), gen)
    assert not torch.allclose(va[:, 0], vb[:, 0])
    h = unified.with_image(model.embed(gen), gen, model.image_vectors(q, t))
    with torch.no_grad():
        sb = model.states(h, gen)
    torch.testing.assert_close(sa[:, :3], sb[:, :3])


# ------------------------------------------------------------------ the flow-matching loss


def test_the_loss_is_lambda_times_the_error_against_the_paths_derivative():
    model = _model(flow_weight=5.0)
    x, y = _digits(3)
    prompts = prompt_ids(y, torch.tensor([0, 1, 0]))
    loss = model.generation_losses(prompts, x, torch.Generator().manual_seed(7))
    # the same draws by hand: t first, then the noise
    g = torch.Generator().manual_seed(7)
    t = torch.rand(3, generator=g)
    noise = torch.randn(3, N, 4, generator=g)
    x0 = model.as_patches(x)
    x_t = interpolate(x0, noise, t)
    h = 1e-3  # the target is dx_t/dt along the straight path, by a finite difference
    derivative = (interpolate(x0, noise, t + h) - interpolate(x0, noise, t - h)) / (2 * h)
    ids, _ = generation_sequence(prompts, model.codes(x))
    with torch.no_grad():
        v = model.velocity(ids, x_t, t)
    by_hand = 5.0 * ((v - derivative) ** 2).mean((1, 2))
    torch.testing.assert_close(loss, by_hand, rtol=1e-3, atol=1e-4)
    assert x0.min() >= -1 and x0.max() <= 1 and x0.min() == -1  # pixels scaled to [-1, 1], the background at -1


def test_validation_draws_the_same_times_and_noise_each_time():
    model, splits = _model(), digits_splits().first(40)
    assert unified_recipe.validation_error(model, splits) == unified_recipe.validation_error(model, splits)


def test_forward_trains_every_part_with_both_tasks():
    model = _model().train()
    x, y = _digits(32)
    torch.manual_seed(0)
    loss, _ = model((x, y))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ------------------------------------------------------------------ drawing


def test_drawing_is_seeded_takes_the_asked_steps_and_guidance_zero_ignores_the_prompt(monkeypatch):
    model = _model()
    a = model.generate_images(["七", "one"], 3.0, torch.Generator().manual_seed(1), steps=3)
    assert a.shape == (2, 64) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, model.generate_images(["七", "one"], 3.0, torch.Generator().manual_seed(1), steps=3))
    assert not torch.equal(a, model.generate_images(["七", "one"], 3.0, torch.Generator().manual_seed(2), steps=3))
    b = model.generate_images(["七", "one"], 0.0, torch.Generator().manual_seed(3), steps=3)
    assert torch.equal(b, model.generate_images(["nine", NULL], 0.0, torch.Generator().manual_seed(3), steps=3))
    calls = []
    velocity = model.velocity
    monkeypatch.setattr(model, "velocity", lambda *args: calls.append(args[2]) or velocity(*args))
    model.generate_images(["one"], 3.0, torch.Generator().manual_seed(0), steps=4)
    assert [float(t[0]) for t in calls] == [1.0, 0.75, 0.5, 0.25]  # one pass per Euler step, from noise (t = 1) towards the data
    assert all(len(t) == 2 for t in calls)  # with the prompt and with [NULL], in one batch
    with pytest.raises(ValueError, match="steps"):
        model.generate_images(["one"], steps=0)


def test_the_config_checks_its_fields_and_the_model_cannot_rank_by_drawing():
    assert TransfusionConfig().vocab == len(TEXT_VOCAB) + 1 and TransfusionConfig().patch == 2
    for bad in ({"flow_weight": 0}, {"time_dim": 3}, {"sample_steps": 0}, {"grid": 3}):
        with pytest.raises(ValueError):
            TransfusionConfig(**bad)
    model = _model()
    assert unified.learned_directions(model) == ("read",)
    assert torch.equal(model.rebuilt(torch.tensor([[0.0, 16.0]])), torch.tensor([[0.0, 1.0]]))


# ------------------------------------------------------------------ a short run


def test_a_short_run_draws_the_prompted_digit_more_often_than_chance(tmp_path):
    # generation only, 30 epochs; about 6 s on one thread.
    # seeds 0..2 at 16 Euler steps, guidance 3: judged right 0.69, 0.56, 0.45; chance is 0.1
    splits = digits_splits()
    config = {"dim": 64, "depth": 1, "heads": 2, "tasks": "generation"}
    train = TrainConfig(epochs=30, lr=3e-3, optimizer="adamw", schedule="cosine", patience=0, device="cpu", seed=0)
    run = runs.train_run("transfusion", config, train, tmp_path / "run", progress=False, splits=splits)
    judged = unified_recipe.judged_generation(run.model, 10, 3.0)
    assert judged["accuracy"] > 0.3, judged["accuracy"]
