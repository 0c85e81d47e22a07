"""The Show-o-style masked model: its attention mask by hand, the hiding schedule, the loss on hidden codes only,
drawing in K passes that reveal what the schedule says, what it cannot rank, its config, and a short run that draws better than chance."""

from __future__ import annotations

import itertools

import pytest
import torch

from unimodel import runs
from unimodel.data import digits_splits
from unimodel.models import unified
from unimodel.models.masked import MaskedConfig, MaskedUnified, hidden_after, hide_at_random
from unimodel.models.unified import BOI, BOS, EOI, NULL, TEXT_VOCAB, TOKEN_ID, caption_ids, generation_sequence, prompt_ids, understanding_sequence
from unimodel.recipes import unified as unified_recipe
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig

N = 16  # codes per image
T0 = len(TEXT_VOCAB)  # id of image code 0


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))


def _model(seed: int = 0, **config) -> MaskedUnified:
    set_seed(seed)
    return MaskedUnified(MaskedConfig(**{"dim": 32, "depth": 2, "heads": 2, "dropout": 0.0, **config})).eval()


def _codes(B: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(32, (B, N), generator=torch.Generator().manual_seed(seed))


def _generation(B: int = 2) -> torch.Tensor:
    ids, _ = generation_sequence(prompt_ids(torch.arange(B) % 10, torch.arange(B) % 2), _codes(B))
    return ids


def _understanding(B: int = 2) -> torch.Tensor:
    y, langs = torch.arange(B) % 10, torch.arange(B) % 2
    ids, _ = understanding_sequence(_codes(B), langs, caption_ids(y, langs))
    return ids


# ------------------------------------------------------------------ the attention mask


def _mask_by_hand(T: int, image: range) -> torch.Tensor:
    """Row t: the tokens token t may look at. Every token sees itself and the past; an image token also sees the whole image."""
    rows = []
    for t in range(T):
        row = [s <= t or (t in image and s in image) for s in range(T)]
        rows.append(row)
    return torch.tensor(rows)


def test_the_generation_mask_is_causal_text_and_a_full_image():
    ids = _generation()
    assert ids[0, 2] == TOKEN_ID[BOI]
    mask = _model().attention_mask(ids)
    expected = _mask_by_hand(ids.shape[1], range(3, 3 + N))
    assert mask.shape == (2, N + 3, N + 3)
    assert torch.equal(mask[0], expected) and torch.equal(mask[1], expected)
    assert not mask[0, 1, 3:].any()  # the prompt never sees the image
    assert mask[0, 3, 3 + N - 1]  # the first code sees the last


def test_the_understanding_mask_keeps_the_caption_causal():
    ids = _understanding()
    assert ids[0, 1] == TOKEN_ID[BOI] and ids[0, 2 + N] == TOKEN_ID[EOI]
    mask = _model().attention_mask(ids)
    T = ids.shape[1]
    assert torch.equal(mask[0], _mask_by_hand(T, range(2, 2 + N)))
    caption = range(2 + N + 2, T)  # after [EOI] [lang]
    for t in caption:
        assert not mask[0, t, t + 1 :].any()  # a caption word never sees a later word
        assert mask[0, t, 2 : 2 + N].all()  # and sees the whole image


def test_a_later_code_changes_an_earlier_codes_logits_but_never_the_texts():
    model = _model()
    ids = _generation(1)
    changed = ids.clone()
    changed[0, -1] = T0 + (int(ids[0, -1]) - T0 + 1) % 32  # the last code, another value
    with torch.no_grad():
        a, b = model.logits(ids), model.logits(changed)
    torch.testing.assert_close(a[:, :3], b[:, :3])  # [BOS] prompt [BOI] see nothing of the image after them
    assert not torch.allclose(a[:, 3], b[:, 3])  # the first code's position sees the last code


def test_the_unified_model_stays_causal():
    ids = _generation(1)
    set_seed(0)
    base = unified.Unified(unified.UnifiedConfig(dim=32, depth=2, heads=2, dropout=0.0))
    assert torch.equal(base.attention_mask(ids)[0], torch.ones(N + 3, N + 3, dtype=torch.bool).tril())


# ------------------------------------------------------------------ hiding and the loss


def test_hiding_follows_the_cosine_and_hides_at_least_one():
    codes = _codes(4000)
    shown, hidden = hide_at_random(codes, 32, torch.Generator().manual_seed(0))
    assert hidden.sum(1).min() >= 1 and hidden.sum(1).max() == N
    assert torch.equal(shown[hidden], torch.full((int(hidden.sum()),), 32)) and torch.equal(shown[~hidden], codes[~hidden])
    # E[cos(pi u / 2)] = 2 / pi; the count is rounded up, which adds about half a code
    share = hidden.float().mean().item()
    assert 2 / torch.pi < share < 2 / torch.pi + 1 / N, share
    again, _ = hide_at_random(codes, 32, torch.Generator().manual_seed(0))
    assert torch.equal(again, shown)


def test_the_loss_is_the_cross_entropy_of_the_hidden_codes_only():
    model = _model()
    x, prompts = digits_splits().test.x[:3], prompt_ids(torch.tensor([1, 2, 3]), torch.tensor([0, 1, 0]))
    codes = model.codes(x)
    loss = model.generation_losses(prompts, x, torch.Generator().manual_seed(5))
    shown, hidden = hide_at_random(codes, model.mask_code, torch.Generator().manual_seed(5))
    ids, _ = generation_sequence(prompts, shown)
    with torch.no_grad():
        log_p = model.logits(ids)[:, 3:, T0 : T0 + 32].log_softmax(-1)
    by_hand = [-log_p[b, hidden[b]].gather(-1, codes[b, hidden[b]][:, None]).mean() for b in range(3)]
    torch.testing.assert_close(loss, torch.stack(by_hand))
    # a shown code is input, not target: changing the target there changes nothing but the input
    assert (shown[hidden] == model.mask_code).all() and ids[0, 3:][hidden[0]].eq(T0 + model.mask_code).all()


def test_validation_draws_the_same_hidden_codes_each_time():
    model, splits = _model(), digits_splits().first(40)
    assert unified_recipe.validation_error(model, splits) == unified_recipe.validation_error(model, splits)


def test_forward_trains_the_transformer_not_the_tokenizer():
    model = _model().train()
    x, y = digits_splits().train.x[:16], digits_splits().train.y[:16]
    loss, _ = model((x, y))
    loss.backward()
    assert all(p.grad is None for p in model.tokenizer.parameters())
    assert model.embed.weight.grad is not None and model.embed.weight.grad[T0 + model.mask_code].abs().sum() > 0  # [MASK] is learned


# ------------------------------------------------------------------ drawing in K passes


def test_the_schedule_ends_with_every_code_shown_and_hides_less_each_pass():
    for K in range(1, N + 1):
        counts = [hidden_after(step, K, N) for step in range(K)]
        assert counts[-1] == 0 and all(a >= b for a, b in itertools.pairwise(counts))
        assert all(0 <= c < N for c in counts)
    assert hidden_after(0, 1, N) == 0  # one pass: all at once


@pytest.mark.parametrize("steps", [1, 4, 16])
def test_drawing_takes_k_passes_revealing_what_the_schedule_says(steps, monkeypatch):
    model = _model()
    seen = []
    real = model.logits
    monkeypatch.setattr(model, "logits", lambda ids, x=None: seen.append(ids.clone()) or real(ids, x))
    codes = model.generate_codes(["七", "one"], 2.0, torch.Generator().manual_seed(0), steps=steps)
    assert len(seen) == steps
    assert codes.shape == (2, N) and codes.min() >= 0 and codes.max() < 32  # every code shown, none is [MASK]
    assert seen[0][:, 3:].eq(T0 + model.mask_code).all()  # the first pass sees only [MASK]
    assert seen[0][:, :3].tolist() == [[TOKEN_ID[BOS], TOKEN_ID[p], TOKEN_ID[BOI]] for p in ("七", "one", NULL, NULL)]
    hidden = N
    for step, ids in enumerate(seen[1:]):
        now = int(ids[0, 3:].eq(T0 + model.mask_code).sum())
        assert now == min(hidden_after(step, steps, N), hidden - 1)
        shown = ids[:2, 3:] != T0 + model.mask_code
        assert torch.equal(ids[:2, 3:][shown] - T0, codes[shown])  # a code once shown is never changed
        assert torch.equal(ids[:2, 3:], ids[2:, 3:])  # the [NULL] rows carry the same codes
        hidden = now


def test_drawing_is_seeded_and_guidance_zero_ignores_the_prompt():
    model = _model()
    a = model.generate_codes(["七", "one"], 3.0, torch.Generator().manual_seed(1), steps=4)
    assert torch.equal(a, model.generate_codes(["七", "one"], 3.0, torch.Generator().manual_seed(1), steps=4))
    assert not torch.equal(a, model.generate_codes(["七", "one"], 3.0, torch.Generator().manual_seed(2), steps=4))
    b = model.generate_codes(["七", "one"], 0.0, torch.Generator().manual_seed(3), steps=4)
    assert torch.equal(b, model.generate_codes(["nine", NULL], 0.0, torch.Generator().manual_seed(3), steps=4))


@pytest.mark.parametrize("steps", [0, N + 1])
def test_steps_outside_one_to_n_are_refused(steps):
    with pytest.raises(ValueError, match="between 1 and 16"):
        _model().generate_codes(["one"], steps=steps)
    with pytest.raises(ValueError, match="between 1 and 16"):
        MaskedConfig(sample_steps=steps)


def test_the_config_adds_mask_to_the_vocabulary_and_checks_its_fields():
    config = MaskedConfig()
    assert config.vocab == unified.UnifiedConfig().vocab + 1
    assert _model().mask_code == 32 and config.vocab - 1 == T0 + 32
    with pytest.raises(ValueError, match="choice_temperature"):
        MaskedConfig(choice_temperature=-1)


def test_it_reads_but_cannot_rank_by_drawing():
    model = _model()
    assert unified.learned_directions(model) == ("read",)
    x = digits_splits().test.x[:2]
    with pytest.raises(ValueError, match="directions"):
        unified.caption_scores(model, x, "en", ("draw",))
    assert unified.caption_scores(model, x, "en").shape == (2, 10)


# ------------------------------------------------------------------ a short run


def test_a_short_run_draws_the_prompted_digit_more_often_than_chance(tmp_path):
    # generation only, 10 tokenizer epochs, 25 epochs; about 8 s on one thread.
    # seeds 0..2 at 8 passes, guidance 3: judged right 0.47, 0.89, 0.93; chance is 0.1
    splits = digits_splits()
    config = {"tokenizer_epochs": 10, "dim": 32, "depth": 1, "heads": 2, "dropout": 0.0, "tasks": "generation"}
    train = TrainConfig(epochs=25, lr=1e-3, optimizer="adamw", schedule="cosine", patience=0, device="cpu", seed=0)
    run = runs.train_run("masked", config, train, tmp_path / "run", progress=False, splits=splits)
    judged = unified_recipe.judged_generation(run.model, 10, 3.0)
    assert judged["accuracy"] > 0.3, judged["accuracy"]
