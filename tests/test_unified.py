"""The unified model: its two sequences, causal attention (both image encoders), the target-only loss,
classifier-free guidance, drawing and captioning, the config, a short run with its resume, the CLI's sample and caption, digit PNGs."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli import _error  # exit 2, one line on stderr, no traceback, nothing on stdout
from torch.nn import functional as F

from unimodel import runs
from unimodel.cli import main
from unimodel.data import digits_splits, read_digit_png, write_digit_png
from unimodel.models import unified
from unimodel.models.captions import LANGUAGES, NAMES, PARITY
from unimodel.models.unified import (
    BOI,
    BOS,
    EOI,
    EOS,
    LANGUAGE_TOKEN,
    NULL,
    PAD,
    TEXT_VOCAB,
    TOKEN_ID,
    WORDS,
    Unified,
    UnifiedConfig,
    caption,
    caption_ids,
    caption_scores,
    caption_words,
    draw,
    generation_sequence,
    guided_logits,
    prompt_digits,
    prompt_ids,
    understanding_sequence,
    write,
)
from unimodel.recipes import unified as unified_recipe
from unimodel.recipes.unified import SPEC
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig

N = 16  # codes per image
T0 = len(TEXT_VOCAB)  # id of image code 0
TINY = {"tokenizer_epochs": 2, "dim": 32, "depth": 1, "heads": 2}
CLI_TINY = ["--tokenizer-epochs", "2", "--dim", "32", "--depth", "1", "--heads", "2", "--epochs", "1"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def splits():
    return digits_splits()


def _model(seed=0, **config) -> Unified:
    set_seed(seed)
    return Unified(UnifiedConfig(**{"dim": 32, "depth": 2, "heads": 2, "dropout": 0.0, **config})).eval()


def _codes(B: int, seed: int = 0, K: int = 32) -> torch.Tensor:
    return torch.randint(K, (B, N), generator=torch.Generator().manual_seed(seed))


def _understanding(B: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    y, langs = torch.arange(B) % 10, torch.arange(B) % 2
    return understanding_sequence(_codes(B, seed), langs, caption_ids(y, langs))


# ------------------------------------------------------------------ sequences


def test_generation_sequence_layout_and_target():
    codes = _codes(2)
    prompts = prompt_ids(torch.tensor([7, 3]), torch.tensor([LANGUAGES.index("zh"), LANGUAGES.index("en")]))
    assert prompts.tolist() == [TOKEN_ID["七"], TOKEN_ID["three"]]
    ids, target = generation_sequence(prompts, codes)
    assert ids.shape == target.shape == (2, N + 3)
    assert ids[:, 0].tolist() == [TOKEN_ID[BOS]] * 2 and ids[:, 2].tolist() == [TOKEN_ID[BOI]] * 2
    assert ids[:, 1].tolist() == prompts.tolist()
    assert torch.equal(ids[:, 3:], codes + T0)  # image codes are offset by the text vocabulary
    assert target.dtype == torch.bool
    assert not target[:, :3].any() and target[:, 3:].all()  # exactly the codes
    assert (ids[target] >= T0).all() and (ids[~target] < T0).all()


def test_understanding_sequence_layout_and_target():
    codes = _codes(2, seed=1)
    y, langs = torch.tensor([7, 4]), torch.tensor([LANGUAGES.index("en"), LANGUAGES.index("zh")])
    captions = caption_ids(y, langs)
    assert [[TEXT_VOCAB[i] for i in row] for row in captions.tolist()] == [["seven", "odd"], [NAMES["zh"][4], PARITY["zh"][0]]]
    ids, target = understanding_sequence(codes, langs, captions)
    assert ids.shape == target.shape == (2, N + 7)
    tokens = [[TEXT_VOCAB[i] if i < T0 else "code" for i in row] for row in ids.tolist()]
    assert tokens[0] == [BOS, BOI, *["code"] * N, EOI, LANGUAGE_TOKEN["en"], "seven", "odd", EOS]
    assert tokens[1] == [BOS, BOI, *["code"] * N, EOI, LANGUAGE_TOKEN["zh"], "四", PARITY["zh"][0], EOS]
    assert torch.equal(ids[:, 2 : 2 + N], codes + T0)
    assert not target[:, :-3].any() and target[:, -3:].all()  # the caption's two words and [EOS]
    assert UnifiedConfig().length == N + 7 and UnifiedConfig().vocab == T0 + 32


def test_the_vocabulary_and_prompts():
    assert TEXT_VOCAB[:6] == (PAD, BOS, EOS, BOI, EOI, NULL)
    assert len(set(TEXT_VOCAB)) == len(TEXT_VOCAB)
    assert {"seven", "七", "odd", "偶数"} <= set(WORDS)
    assert prompt_digits()["七"] == prompt_digits()["seven"] == 7 and len(prompt_digits()) == 20
    assert caption_words(8, "en") == ["eight", "even"]


# ------------------------------------------------------------------ causal attention


def _perturb(ids: torch.Tensor, t: int, vocab: int) -> torch.Tensor:
    changed = ids.clone()
    changed[:, t] = (changed[:, t] + 1 + torch.arange(len(ids))) % vocab
    return changed


@pytest.mark.parametrize("encoder", ["vq", "patches"])
def test_changing_a_later_token_never_changes_earlier_logits(splits, encoder):
    model = _model(understanding_encoder=encoder)
    V = model.config.vocab
    x = splits.train.x[:3]
    ids, _ = _understanding(3)
    gen, _ = generation_sequence(prompt_ids(torch.tensor([1, 2, 3]), torch.tensor([0, 1, 0])), _codes(3, seed=5))
    with torch.no_grad():
        for seq, images in ((ids, x), (ids, None), (gen, None)):
            logits = model.logits(seq, images)
            assert logits.shape == (3, seq.shape[1], V)
            for t in range(seq.shape[1]):
                other = model.logits(_perturb(seq, t, V), images)
                torch.testing.assert_close(other[:, :t], logits[:, :t], atol=1e-5, rtol=0)
                read = not (encoder == "patches" and images is not None and 2 <= t < 2 + N)
                if read:  # the changed token itself is seen from its own position on
                    assert (other[:, t:] - logits[:, t:]).abs().amax() > 1e-4, t


def test_patches_read_the_pixels_not_the_code_ids(splits):
    model = _model(understanding_encoder="patches")
    x = splits.train.x[:3]
    ids, _ = _understanding(3)
    with torch.no_grad():
        logits = model.logits(ids, x)
        other_codes = ids.clone()
        other_codes[:, 2 : 2 + N] = _codes(3, seed=9) + T0
        torch.testing.assert_close(model.logits(other_codes, x), logits)  # the code ids at image positions are replaced
        other_image = model.logits(ids, splits.train.x[3:6])
    torch.testing.assert_close(other_image[:, :2], logits[:, :2], atol=1e-5, rtol=0)  # [BOS] [BOI] come before the image
    assert (other_image[:, -4:] - logits[:, -4:]).abs().amax() > 1e-4  # the caption sees its image


def test_the_caption_positions_see_their_image_codes():
    model = _model()
    ids, _ = _understanding(3)
    other = ids.clone()
    other[:, 2 : 2 + N] = _codes(3, seed=7) + T0
    with torch.no_grad():
        a, b = model.logits(ids), model.logits(other)
    torch.testing.assert_close(a[:, :2], b[:, :2])  # [BOS] [BOI]: before the codes
    caption_positions = slice(-4, None)  # [lang], the two words: the logits predicting the caption and [EOS]
    assert ((a[:, caption_positions] - b[:, caption_positions]).abs().flatten(1).amax(1) > 1e-4).all()
    # and a caption reads only its own image: swapping images swaps the rows
    swapped = torch.cat([other[:1], ids[1:]])
    with torch.no_grad():
        c = model.logits(swapped)
    torch.testing.assert_close(c[0], b[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(c[1:], a[1:], atol=1e-5, rtol=0)


# ------------------------------------------------------------------ the loss


def _hand_loss(logits: torch.Tensor, ids: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    out = []
    for b in range(len(ids)):
        terms = [-F.log_softmax(logits[b, t], -1)[ids[b, t + 1]] for t in range(ids.shape[1] - 1) if target[b, t + 1]]
        out.append(torch.stack(terms).mean())
    return torch.stack(out)


def test_sequence_losses_are_the_cross_entropy_of_the_target_tokens(splits):
    model = _model()
    for ids, target in (_understanding(3), generation_sequence(torch.tensor([TOKEN_ID["七"], TOKEN_ID[NULL], TOKEN_ID["one"]]), _codes(3))):
        with torch.no_grad():
            loss = model.sequence_losses(ids, target)
            hand = _hand_loss(model.logits(ids[:, :-1]), ids, target)
        assert loss.shape == (3,)
        torch.testing.assert_close(loss, hand, atol=1e-5, rtol=1e-5)


def test_a_non_target_label_leaves_the_loss_unchanged(monkeypatch):
    model = _model()
    fixed = torch.randn(3, N + 7, model.config.vocab, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(model, "logits", lambda ids, x=None: fixed[:, : ids.shape[1]])  # logits that ignore the ids: only the labels change
    for ids, target in (_understanding(3), generation_sequence(torch.tensor([TOKEN_ID["七"], TOKEN_ID[NULL], TOKEN_ID["one"]]), _codes(3))):
        loss = model.sequence_losses(ids, target)
        torch.testing.assert_close(loss, _hand_loss(fixed, ids, target))
        for t in range(1, ids.shape[1]):
            changed = _perturb(ids, t, model.config.vocab)
            moved = model.sequence_losses(changed, target)
            if target[0, t]:
                assert (moved != loss).all(), t
            else:
                torch.testing.assert_close(moved, loss, atol=0, rtol=0)


@pytest.mark.parametrize("config", [{"tasks": "both"}, {"tasks": "generation"}, {"tasks": "understanding", "understanding_encoder": "patches"}])
def test_forward_gives_a_loss_that_trains_the_transformer_not_the_tokenizer(splits, config):
    model = _model(**config).train()
    assert not model.tokenizer.training  # fixed once trained: no dead-code restarts
    loss, metrics = model((splits.train.x[:8], splits.train.y[:8]))
    assert loss.dim() == 0 and loss.item() > 0 and metrics == {}
    loss.backward()
    # the tokenizer's encoder and decoder are never reached by the Transformer's loss
    assert all(p.grad is None for p in (*model.tokenizer.encoder.parameters(), *model.tokenizer.decoder.parameters()))
    model.zero_grad(set_to_none=True)
    model.tokenizer.requires_grad_(False)  # as train_tokenizer leaves it
    model((splits.train.x[:8], splits.train.y[:8]))[0].backward()
    assert all(p.grad is None for p in model.tokenizer.parameters())
    assert model.embed.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    if config.get("understanding_encoder") == "patches":
        assert all(p.grad is not None for p in model.understanding_encoder.parameters())


# ------------------------------------------------------------------ guidance and drawing


def test_guided_logits_at_scale_zero_and_one():
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(4, 32, generator=g), torch.randn(4, 32, generator=g)
    torch.testing.assert_close(guided_logits(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(guided_logits(cond, uncond, 1.0), cond)
    torch.testing.assert_close(guided_logits(cond, uncond, 2.0), 2 * cond - uncond)


def test_generate_codes_shapes_and_seeds():
    model = _model()
    prompts = ["七", "seven", "zero", NULL]
    codes = model.generate_codes(prompts, 3.0, torch.Generator().manual_seed(0))
    assert codes.shape == (4, N) and codes.dtype == torch.int64
    assert codes.min() >= 0 and codes.max() < model.config.codebook_size
    assert torch.equal(model.generate_codes(prompts, 3.0, torch.Generator().manual_seed(0)), codes)
    assert not torch.equal(model.generate_codes(prompts, 3.0, torch.Generator().manual_seed(1)), codes)


def test_guidance_zero_ignores_the_prompt():
    model = _model()
    a = model.generate_codes(["七", "one", "two"], 0.0, torch.Generator().manual_seed(3))
    b = model.generate_codes(["nine", NULL, "二"], 0.0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_guidance_runs_each_step_with_the_prompt_and_with_null(monkeypatch):
    model = _model()
    seen = []
    real = model.logits
    monkeypatch.setattr(model, "logits", lambda ids, x=None: seen.append(ids.clone()) or real(ids, x))
    codes = model.generate_codes(["七", "one"], 2.0, torch.Generator().manual_seed(0))
    assert len(seen) == N
    first, last = seen[0], seen[-1]
    assert first.tolist() == [[TOKEN_ID[BOS], TOKEN_ID[p], TOKEN_ID[BOI]] for p in ("七", "one", NULL, NULL)]
    assert last.shape == (4, 3 + N - 1)
    assert torch.equal(last[:2, 3:], last[2:, 3:])  # both halves continue with the sampled codes
    assert torch.equal(last[:2, 3:] - T0, codes[:, :-1])


def test_draw_rejects_an_unknown_prompt_and_names_the_valid_ones():
    model = _model()
    with pytest.raises(ValueError) as error:
        draw(model, ["seven", "eleven"])
    message = str(error.value)
    assert "eleven" in message and "seven" in message and "七" in message and "zero" in message
    images = draw(model, ["seven", "七"], generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 64) and images.min() >= 0 and images.max() <= 1


# ------------------------------------------------------------------ captioning


@pytest.mark.parametrize("encoder", ["vq", "patches"])
def test_write_writes_only_words_and_stops_at_eos(splits, encoder):
    model = _model(understanding_encoder=encoder)
    x = splits.train.x[:4]
    for lang in LANGUAGES:
        for words in write(model, x, lang):
            assert len(words) <= 3 and all(word in WORDS for word in words)
    with torch.no_grad():  # the head prefers tokens a caption may not hold: they are never written
        for token in (PAD, BOS, BOI, EOI, NULL, LANGUAGE_TOKEN["en"]):
            model.head.bias[TOKEN_ID[token]] = 100.0
        model.head.bias[T0:] = 100.0
        model.head.bias[TOKEN_ID["seven"]] = 50.0
    assert write(model, x, "en") == [["seven"] * 3] * 4  # no [EOS]: the three written words
    assert caption(model, x, "en", "greedy") == [["seven"] * 3] * 4
    with torch.no_grad():
        model.head.bias[TOKEN_ID[EOS]] = 60.0
    assert write(model, x, "zh") == [[]] * 4  # [EOS] first: an empty caption


def _log_likelihood_by_hand(model, tokens: list[str], codes: torch.Tensor, x=None) -> float:
    """log p of the tokens after the prompt (image codes, or caption words and [EOS]), one softmax at a time."""
    ids = torch.tensor([TOKEN_ID[t] if isinstance(t, str) else T0 + t for t in tokens])[None]
    log_p = model.logits(ids[:, :-1], x).log_softmax(-1)[0]
    first = 3 if tokens[2] == BOI else 4 + N  # generation: after [BOS] name [BOI]; understanding: after [lang]
    return sum(log_p[t - 1, ids[0, t]].item() for t in range(first, len(tokens)))


@pytest.mark.parametrize("encoder", ["vq", "patches"])
def test_caption_scores_are_the_log_likelihoods_in_the_caption_language(splits, encoder):
    model = _model(understanding_encoder=encoder)
    x = splits.test.x[:2]
    codes = model.codes(x)
    read = caption_scores(model, x, "zh", ("read",))
    drawn = caption_scores(model, x, "zh", ("draw",))
    for i in range(2):
        for d in (3, 8):
            image = codes[i].tolist()
            by_hand = _log_likelihood_by_hand(
                model, [BOS, BOI, *image, EOI, LANGUAGE_TOKEN["zh"], *caption_words(d, "zh"), EOS], codes[i : i + 1], x[i : i + 1]
            )
            assert read[i, d].item() == pytest.approx(by_hand, abs=1e-4)
            by_hand = _log_likelihood_by_hand(model, [BOS, NAMES["zh"][d], BOI, *image], codes[i : i + 1])  # the name in Chinese
            assert drawn[i, d].item() == pytest.approx(by_hand, abs=1e-4)
    torch.testing.assert_close(caption_scores(model, x, "zh"), read + drawn)  # a model trained on both: both terms


def test_ranked_captions_are_the_best_scored_valid_captions(splits, monkeypatch):
    model = _model()
    x = splits.test.x[:3]
    scores = torch.full((3, 10), -5.0)
    scores[0, 7], scores[1, 0], scores[2, 4] = 0.0, -1.0, -2.0
    monkeypatch.setattr(unified, "caption_scores", lambda m, images, lang: scores[: len(images)])
    assert caption(model, x, "en") == [["seven", "odd"], ["zero", "even"], ["four", "even"]]
    assert caption(model, x, "zh") == [["七", "奇数"], ["零", "偶数"], ["四", "偶数"]]
    assert SPEC.caption(model, x[:1], "en") == ["seven, odd"]
    with pytest.raises(ValueError, match="greedy"):
        caption(model, x, "en", "beam")


def test_caption_scores_use_only_the_learned_directions(splits):
    x = splits.test.x[:2]
    assert unified.learned_directions(_model()) == ("read", "draw")
    generation, understanding = _model(tasks="generation"), _model(tasks="understanding")
    assert unified.learned_directions(generation) == ("draw",) and unified.learned_directions(understanding) == ("read",)
    torch.testing.assert_close(caption_scores(generation, x, "en"), caption_scores(generation, x, "en", ("draw",)))
    for model, directions in ((generation, ("read",)), (understanding, ("draw",)), (_model(), ("smell",)), (_model(), ())):
        with pytest.raises(ValueError, match="directions"):
            caption_scores(model, x, "en", directions)


def test_caption_accuracy_scores_scripted_captions(splits, monkeypatch):
    model = _model()
    x, y = splits.test.x[:4], splits.test.y[:4]
    d = y.tolist()
    script = [caption_words(d[0], "en"), [NAMES["en"][d[1]], "even" if d[1] % 2 else "odd"], [NAMES["en"][(d[2] + 1) % 10]], []]
    monkeypatch.setattr(unified_recipe, "caption", lambda model, x, lang, method: script)
    assert unified_recipe.caption_accuracy(model, x, y, "en") == {"exact": 0.25, "names_digit": 0.5}


# ------------------------------------------------------------------ the config


@pytest.mark.parametrize(
    "bad",
    [
        {"tasks": "all"},
        {"tasks": "captioning"},
        {"understanding_encoder": "clip"},
        {"dim": 30, "heads": 4},
        {"dim": 32, "heads": 5},
        {"dim": 0},
        {"depth": 0},
        {"tokenizer_epochs": 0},
        {"dropout": 1.0},
        {"label_dropout": -0.1},
        {"guidance": -1.0},
        {"grid": 3},  # the tokenizer's settings are checked too
    ],
)
def test_config_validation(bad):
    with pytest.raises(ValueError):
        UnifiedConfig(**bad)


# ------------------------------------------------------------------ a short run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, splits):
    """A unified model trained by ``runs.train_run`` on the first 200 digits: (folder, run)."""
    out = tmp_path_factory.mktemp("unified") / "run"
    run = runs.train_run("unified", TINY, TrainConfig(epochs=3, device="cpu"), out, progress=False, splits=splits.first(200))
    return out, run


def test_a_short_run_trains_evaluates_and_reloads(tiny_run, splits):
    out, run = tiny_run
    assert (out / runs.CHECKPOINT).exists() and len(run.result.history) == 3
    model = run.model
    assert not model.training
    scores = unified_recipe.evaluate(model, splits.first(200), per_class=2)
    assert set(scores) == {
        "tasks",
        "guidance",
        "per_class",
        "judge_real",
        "judge_tokenized",
        "caption",
        "caption_exact",
        "ranked",
        "ranked_exact",
        "generation",
        "diversity",
    }
    assert set(scores["ranked"]) == set(LANGUAGES) and all(set(v) == {"read", "draw", "learned"} for v in scores["ranked"].values())
    assert scores["per_class"] == 2 and scores["tasks"] == "both"
    assert set(scores["caption"]) == set(LANGUAGES)
    assert all(set(v) == {"exact", "names_digit"} for v in scores["caption"].values())
    assert set(scores["generation"]) == {"accuracy", "per_language", "per_digit"} and len(scores["generation"]["per_digit"]) == 10
    assert set(scores["diversity"]) == {"distinct", "copied", "nearest_train", "nearest_train_test"}
    assert 0.85 < scores["judge_real"] <= 1 and 0 <= scores["judge_tokenized"] <= 1
    json.dumps(scores)  # JSON-able, as 'unimodel eval' prints it

    again = runs.load_run(out)
    assert again.name == "unified" and again.model.config == model.config
    ids, _ = _understanding(3)
    with torch.no_grad():
        torch.testing.assert_close(again.model.logits(ids), model.logits(ids), atol=0, rtol=0)
    assert torch.equal(again.model.tokenizer.codebook, model.tokenizer.codebook)


def test_diversity_compares_drawings_at_the_pixel_levels_and_copies_against_the_rebuilt_training_images():
    train = torch.tensor([[0.0, 0.5, 1.0], [1.0, 1.0, 0.0]])
    rebuilt = torch.tensor([[0.0, 0.5, 0.9375], [1.0, 1.0, 0.0]])  # a tokenizer's round trip: the first image lost a level
    drawn = torch.tensor(
        [
            [0.0, 0.5, 0.94],  # the first training image's round trip, up to rounding: a copy
            [0.01, 0.49, 0.93],  # the same at the 17 levels: not distinct from the first
            [0.0, 0.5, 1.0],  # the training image itself, which this tokenizer cannot give back: not counted as a copy
            [0.5, 0.5, 0.5],
        ]
    )
    measured = unified_recipe.diversity(drawn, rebuilt, train, train[:1])
    assert measured["distinct"] == 3 / 4 and measured["copied"] == 2 / 4
    assert measured["nearest_train_test"] == 0
    # distances to the nearest training image: 0.06, 0.071, 0 and 0.707; torch's median of four is the lower middle one
    assert measured["nearest_train"] == pytest.approx(0.06)


def test_evaluate_reports_only_the_trained_tasks(splits):
    small = splits.first(50)
    generation = unified_recipe.evaluate(_model(tasks="generation"), small, per_class=1)
    assert "generation" in generation and "caption" not in generation and "caption_exact" not in generation
    assert set(generation["ranked"]["en"]) == {"draw", "learned"} and generation["ranked"]["en"]["draw"] == generation["ranked"]["en"]["learned"]
    understanding = unified_recipe.evaluate(_model(tasks="understanding"), small, per_class=1)
    assert "caption" in understanding and "generation" not in understanding and "diversity" not in understanding
    assert set(understanding["ranked"]["zh"]) == {"read", "learned"}
    errors = [SPEC.validate(_model(tasks=tasks), small) for tasks in ("generation", "understanding", "both")]
    assert all(e > 0 for e in errors)
    assert errors[2] == pytest.approx((errors[0] + errors[1]) / 2, rel=1e-4)  # validation: the mean over the trained tasks


def _counting_prepare(monkeypatch) -> list:
    """Replace the unified spec's ``prepare`` (the tokenizer's training) by a spy; the list of its calls, each with the tokenizer's weights after it."""
    calls = []

    def prepare(model, *args, **kwargs):
        unified_recipe.train_tokenizer(model, *args, **kwargs)
        calls.append({k: v.clone() for k, v in model.tokenizer.state_dict().items()})

    spec = dataclasses.replace(SPEC, prepare=prepare)
    monkeypatch.setattr(runs, "model_spec", lambda name: spec)
    return calls


def _first_and_resumed(tmp_path, splits, monkeypatch):
    """A 2-epoch run, then resumed to 4 epochs: (the calls of prepare, the first run, the resumed run)."""
    calls = _counting_prepare(monkeypatch)
    small = splits.first(100)
    config = {**TINY, "tokenizer_epochs": 1}
    out = tmp_path / "run"
    first = runs.train_run("unified", config, TrainConfig(epochs=2, device="cpu"), out, progress=False, splits=small)
    assert len(calls) == 1
    resumed = runs.train_run("unified", config, TrainConfig(epochs=4, device="cpu"), out, resume=True, progress=False, splits=small)
    assert len(resumed.result.history) == 4
    return calls, first, resumed


def test_the_tokenizer_is_trained_first_then_frozen_and_not_retrained_on_resume(tmp_path, splits, monkeypatch):
    calls, first, _ = _first_and_resumed(tmp_path, splits, monkeypatch)
    tokenizer = first.model.tokenizer.state_dict()
    assert all(torch.equal(tokenizer[k], v) for k, v in calls[0].items())  # the Transformer's training left it alone
    assert not any(p.requires_grad for p in first.model.tokenizer.parameters())
    assert len(calls) == 1  # resuming loads the saved tokenizer with the rest: prepare is not called again
    small = splits.first(100)
    runs.train_run(
        "unified", {**TINY, "tokenizer_epochs": 1}, TrainConfig(epochs=1, device="cpu"), tmp_path / "fresh", resume=True, progress=False, splits=small
    )
    assert len(calls) == 2  # resume with nothing to resume: a new run, tokenizer first


def test_the_site_trains_the_tokenizer_once_as_a_run_of_its_own_with_the_same_weights(splits):
    from unimodel.website import build

    config, train = {**TINY, "tokenizer_epochs": 2}, TrainConfig(epochs=1, seed=3, device="cpu")
    spec, other = runs.RunSpec("unified", config, train, train_size=100), runs.RunSpec("unified", {**config, "tasks": "generation"}, train, train_size=100)
    stage = spec.stage
    assert stage.name == "vqvae" and stage.train_size == 100 and stage.key == other.stage.key  # one tokenizer for both
    assert not spec.folder.exists() and spec.load() and stage.trained()
    set_seed(3)
    model = Unified(UnifiedConfig(**config))
    unified_recipe.train_tokenizer(model, splits.first(100), train, progress=False)  # what `unimodel train unified` does
    trained = spec.load().model.tokenizer.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in model.tokenizer.state_dict().items())  # bit for bit
    in_graph = {t.id: t for t in build.plan(chapters=["unimodel.chapters.unified_model"])}
    tokenizers = [t for t in in_graph.values() if t.kind == "run" and t.args[0].name == "vqvae"]
    assert tokenizers and all(
        t.needs and t.needs[0] in {x.id for x in tokenizers} for t in in_graph.values() if t.kind == "run" and t.args[0].name == "unified"
    )


def test_resumed_training_leaves_the_tokenizer_alone(tmp_path, splits, monkeypatch):
    calls, _, resumed = _first_and_resumed(tmp_path, splits, monkeypatch)
    changed = [k for k, v in calls[0].items() if not torch.equal(resumed.model.tokenizer.state_dict()[k], v)]
    assert changed == []


def test_a_longer_run_on_understanding_captions_better_than_chance(tmp_path, splits):
    # the Janus encoder reads pixels and does not wait for a good tokenizer; 30 epochs, ~10 s on one thread.
    # seeds 0..2: names the digit 0.87-0.92 per language; chance is 0.1
    config = {"tokenizer_epochs": 1, "dim": 32, "depth": 1, "heads": 2, "dropout": 0.0, "tasks": "understanding", "understanding_encoder": "patches"}
    train = TrainConfig(epochs=30, lr=1e-3, optimizer="adamw", schedule="cosine", patience=0, device="cpu", seed=0)
    run = runs.train_run("unified", config, train, tmp_path / "run", progress=False, splits=splits)
    for lang in LANGUAGES:
        accuracy = unified_recipe.caption_accuracy(run.model, splits.test.x, splits.test.y, lang, "greedy")
        assert accuracy["names_digit"] > 0.2, accuracy


def test_a_model_trained_only_to_draw_reads_digits_through_bayes_rule(tmp_path, splits):
    # never shown a caption: it ranks the ten names by log p(codes | name). 10 tokenizer epochs, 30 epochs, ~9 s on one thread.
    # seeds 0..2: 0.49, 0.75, 0.79 (en); chance is 0.1
    config = {"tokenizer_epochs": 10, "dim": 32, "depth": 1, "heads": 2, "dropout": 0.0, "tasks": "generation"}
    train = TrainConfig(epochs=30, lr=1e-3, optimizer="adamw", schedule="cosine", patience=0, device="cpu", seed=0)
    run = runs.train_run("unified", config, train, tmp_path / "run", progress=False, splits=splits)
    for lang in LANGUAGES:
        assert unified_recipe.ranked_accuracy(run.model, splits.test.x, splits.test.y, lang)["draw"] > 0.3


# ------------------------------------------------------------------ the CLI


def _quiet(argv: list) -> tuple[int, str]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, stdout.getvalue()


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """A unified and a VAE run trained by the CLI: (unified folder, vae folder)."""
    folder = tmp_path_factory.mktemp("cli")
    code, stdout = _quiet(["train", "unified", *CLI_TINY, "--out", folder / "unified"])
    assert code == 0
    assert json.loads(stdout.strip().splitlines()[-1])["epochs"] == 1
    code, _ = _quiet(["train", "vae", "--hidden-dim", "16", "--batch-size", "128", "--epochs", "1", "--out", folder / "vae"])
    assert code == 0
    return folder / "unified", folder / "vae"


def test_cli_samples_a_prompted_digit_and_captions_it(cli_runs, tmp_path, capsys):
    run, _ = cli_runs
    png = tmp_path / "seven.png"
    assert main(["sample", str(run), "--prompt", "七", "--n", "1", "--out", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 1 and report["shape"] == [1, 64]
    x = read_digit_png(png)
    assert x.shape == (64,) and x.dtype == torch.int64 and x.min() == 0 and x.max() == 16
    assert Image.open(png).size == (128, 128)
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "grid.npy")]) == 0  # no prompt: random digits
    capsys.readouterr()
    images = np.load(tmp_path / "grid.npy")
    assert images.shape == (4, 64) and images.min() >= 0 and images.max() <= 1

    assert main(["caption", str(run), str(png)]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert set(report) == {"image", "zh", "en"} and report["image"] == str(png)
    assert all(isinstance(report[lang], str) for lang in LANGUAGES)
    assert all(word in WORDS for word in report["en"].split(", ") if word)
    assert main(["caption", str(run), str(png), "--lang", "en"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"image", "en"}


def test_cli_sample_with_a_prompt_and_guidance_to_npy(cli_runs, tmp_path, capsys):
    run, _ = cli_runs
    out = tmp_path / "x.npy"
    for guidance in ("0", "1.5"):
        assert main(["sample", str(run), "--prompt", "seven", "--guidance", guidance, "--n", "3", "--out", str(out)]) == 0
        capsys.readouterr()
        images = np.load(out)
        assert images.shape == (3, 64) and images.min() >= 0 and images.max() <= 1
    line = _error(capsys, ["sample", run, "--prompt", "eleven", "--n", "1", "--out", tmp_path / "y.png"])
    assert "eleven" in line and "七" in line
    assert "guidance" in _error(capsys, ["sample", run, "--prompt", "seven", "--guidance", "-1", "--out", tmp_path / "y.png"])
    assert not (tmp_path / "y.png").exists()


def test_cli_refuses_a_prompt_or_guidance_it_cannot_use(cli_runs, tmp_path, capsys):
    run, vae = cli_runs
    line = _error(capsys, ["sample", vae, "--prompt", "七", "--n", "1", "--out", tmp_path / "x.png"])
    assert "'vae'" in line and "prompt" in line
    line = _error(capsys, ["sample", run, "--guidance", "2", "--out", tmp_path / "x.png"])
    assert "--prompt" in line
    assert not (tmp_path / "x.png").exists()


def test_cli_caption_refuses_a_model_that_does_not_caption(cli_runs, tmp_path, capsys):
    _, vae = cli_runs
    png = tmp_path / "digit.png"
    write_digit_png(digits_splits().test.x[0].numpy() / 16, png)
    line = _error(capsys, ["caption", vae, png])
    assert "writes no captions" in line and "blip" in line and "unified" in line


def test_cli_caption_refuses_a_missing_blank_or_non_image_file(cli_runs, tmp_path, capsys):
    run, _ = cli_runs
    assert "cannot read" in _error(capsys, ["caption", run, tmp_path / "missing.png"])
    Image.new("L", (32, 32), 255).save(tmp_path / "blank.png")
    assert "blank" in _error(capsys, ["caption", run, tmp_path / "blank.png"])
    (tmp_path / "notes.png").write_text("not a picture")
    assert "cannot read" in _error(capsys, ["caption", run, tmp_path / "notes.png"])
    assert "cannot read" in _error(capsys, ["caption", run, tmp_path])  # a folder


def test_cli_captions_with_blip_too(tmp_path, capsys):
    out = tmp_path / "blip"
    code, _ = _quiet(["train", "blip", "--dim", "16", "--heads", "2", "--image-depth", "1", "--text-depth", "1", "--epochs", "1", "--out", out])
    assert code == 0
    png = tmp_path / "digit.png"
    write_digit_png(digits_splits().test.x[0].numpy() / 16, png)
    assert main(["caption", str(out), str(png), "--lang", "zh"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"image", "zh"} and isinstance(report["zh"], str)


# ------------------------------------------------------------------ digit PNGs


def test_digit_png_round_trips_exactly(splits, tmp_path):
    x = splits.test.x
    full_range = [i for i in range(len(x)) if x[i].min() == 0 and x[i].max() == 16][:40]
    assert len(full_range) == 40
    for i in full_range:
        write_digit_png(x[i].numpy() / 16, tmp_path / "d.png")
        assert torch.equal(read_digit_png(tmp_path / "d.png"), x[i]), i
    picture = Image.open(tmp_path / "d.png")
    assert picture.mode == "L" and picture.size == (128, 128)
    assert np.asarray(picture)[0, 0] == 255  # dark ink on white paper
    write_digit_png(x[full_range[0]].numpy() / 16, tmp_path / "small.png", scale=1)
    assert Image.open(tmp_path / "small.png").size == (8, 8)


def _stroke(ink: int, paper: int, size: int = 80, mode: str = "L") -> Image.Image:
    """A vertical bar in columns 3..4 of an 8x8 grid, rows 1..6, on a plain background."""
    pixels = np.full((8, 8), paper, dtype=np.uint8)
    pixels[1:7, 3:5] = ink
    return Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST).convert(mode)


def test_a_light_background_is_inverted_and_a_dark_one_is_not(tmp_path):
    expected = np.zeros((8, 8), dtype=np.int64)
    expected[1:7, 3:5] = 16
    for name, (ink, paper), mode in (("paper.png", (20, 230), "RGB"), ("screen.png", (240, 10), "L"), ("gray.jpg", (0, 200), "RGB")):
        _stroke(ink, paper, mode=mode).save(tmp_path / name)
        x = read_digit_png(tmp_path / name)
        assert x.shape == (64,) and x.dtype == torch.int64
        if name.endswith(".png"):
            assert np.array_equal(x.numpy().reshape(8, 8), expected), name  # the ink is bright, stretched to 0..16
        else:  # JPEG blurs the edges a little; the reading is still the bar
            assert (x.numpy().reshape(8, 8)[1:7, 3:5] >= 14).all() and (x.numpy().reshape(8, 8)[:, :2] <= 2).all()


def test_a_blank_picture_is_rejected(tmp_path):
    for value in (0, 128, 255):
        Image.new("L", (40, 40), value).save(tmp_path / "blank.png")
        with pytest.raises(ValueError, match="blank"):
            read_digit_png(tmp_path / "blank.png")
    with pytest.raises(ValueError, match="cannot read"):
        read_digit_png(tmp_path / "nothing.png")
