"""CLIP: the symmetric InfoNCE by hand, captions and prompts, the tokenizer, unit embeddings, the temperature, seeding and a short training run."""

from __future__ import annotations

import json
import math

import pytest
import torch

from unimodel.data import digits_splits
from unimodel.models.captions import (
    CONTEXT,
    EOS,
    LANGUAGES,
    NAMES,
    PAD,
    PROMPTS,
    TEMPLATES,
    TOKEN_ID,
    decode,
    draw_captions,
    prompts,
    tokenize,
    training_captions,
    words,
)
from unimodel.models.clip import CLIP, CLIPConfig, image_features, info_nce
from unimodel.recipes.clip import SPEC, retrieval_recall_at_1, zero_shot_accuracy
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit


@pytest.fixture(scope="module")
def splits():
    return digits_splits()


def _model(seed=0, **config) -> CLIP:
    set_seed(seed)
    return CLIP(CLIPConfig(**{"image_dim": 32, "text_dim": 32, "image_depth": 1, "text_depth": 1, "dropout": 0.0, **config})).eval()


# ------------------------------------------------------------------ the loss


def test_info_nce_by_hand():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # scale 1: logits I T^T = [[1, 0.6], [0, 0.8]]
    # rows (image -> text): log(1 + e^-0.4) = 0.513015, log(1 + e^-0.8) = 0.371101
    # columns (text -> image): log(1 + e^-1) = 0.313262, log(1 + e^-0.2) = 0.598139
    # loss = ((0.513015 + 0.371101) / 2 + (0.313262 + 0.598139) / 2) / 2 = 0.448879
    assert info_nce(image, text, torch.tensor(0.0)).item() == pytest.approx(0.448879, abs=1e-5)
    # scale 2 doubles every logit: log(1 + e^-0.8) = 0.371101, log(1 + e^-1.6) = 0.183899, log(1 + e^-2) = 0.126928, log(1 + e^-0.4) = 0.513015
    expected = (0.371101 + 0.183899 + 0.126928 + 0.513015) / 4
    assert info_nce(image, text, torch.tensor(math.log(2.0))).item() == pytest.approx(expected, abs=1e-5)


def test_info_nce_is_symmetric_in_images_and_texts():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(6, 5, generator=g), dim=1)
    b = torch.nn.functional.normalize(torch.randn(6, 5, generator=g), dim=1)
    s = torch.tensor(1.3)
    assert info_nce(a, b, s).item() == pytest.approx(info_nce(b, a, s).item(), rel=1e-6)


def test_the_scale_is_clamped():
    image = torch.eye(2)
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    at_max = info_nce(image, text, torch.tensor(math.log(100.0)))
    assert info_nce(image, text, torch.tensor(20.0)).item() == pytest.approx(at_max.item(), rel=1e-6)
    model = _model()
    assert model.temperature() == pytest.approx(0.07, rel=1e-6)  # starts at 1 / exp(log(1 / 0.07))
    with torch.no_grad():
        model.log_scale.fill_(10.0)
    assert model.temperature() == pytest.approx(0.01, rel=1e-6)  # 1 / max_scale
    s = torch.tensor(10.0, requires_grad=True)
    info_nce(image, text, s).backward()
    assert s.grad.item() == 0.0  # beyond the clamp the scale does not move


# ------------------------------------------------------------------ captions and the tokenizer


def test_every_digit_has_captions_in_both_languages():
    for lang in LANGUAGES:
        for digit in range(10):
            captions = training_captions(digit, lang)
            assert len(captions) == len(TEMPLATES[lang]) >= 2
            assert len(set(captions)) == len(captions)
            assert all(NAMES[lang][digit] in c for c in captions)
    assert training_captions(7, "en")[1] == "an odd digit , seven"
    assert "seven , odd and open" in training_captions(7, "en")
    assert "eight , even and round" in training_captions(8, "en")
    assert training_captions(7, "zh")[0] == "数字七"
    assert "七是奇数" in training_captions(7, "zh")


def test_prompts_are_never_training_captions_but_their_words_are_known():
    every_caption = {c for lang in LANGUAGES for d in range(10) for c in training_captions(d, lang)}
    for lang in LANGUAGES:
        assert prompts(lang) == [PROMPTS[lang].format(name=name) for name in NAMES[lang]]
        for prompt in prompts(lang):
            assert prompt not in every_caption
            assert all(word in TOKEN_ID for word in words(prompt))
    # and the captions drawn for training come only from the training templates
    drawn = draw_captions(torch.arange(10).repeat(50), generator=torch.Generator().manual_seed(0))
    assert set(drawn) <= every_caption
    assert {c for c in drawn if c.isascii()} and {c for c in drawn if not c.isascii()}  # both languages are drawn


def test_tokenizer_round_trip_padding_and_eos():
    assert words("an odd digit , seven") == ["an", "odd", "digit", ",", "seven"]
    assert words("七 是奇数") == ["七", "是", "奇", "数"]  # characters, spaces ignored
    captions = ["the digit seven", "七是奇数", "a handwritten zero"]
    ids = tokenize(captions)
    assert ids.shape == (3, CONTEXT) and ids.dtype == torch.long
    assert decode(ids) == [words(c) for c in captions]
    assert ids[0, :4].tolist() == [TOKEN_ID["the"], TOKEN_ID["digit"], TOKEN_ID["seven"], TOKEN_ID[EOS]]
    assert (ids[0, 4:] == TOKEN_ID[PAD]).all()
    assert ids[1, 4].item() == TOKEN_ID[EOS]  # four characters, then [EOS]
    assert ((ids == TOKEN_ID[EOS]).sum(dim=1) == 1).all()
    with pytest.raises(ValueError):
        tokenize(["the digit eleven"])


# ------------------------------------------------------------------ the model


def test_embeddings_are_unit_length_and_independent_of_the_batch(splits):
    model = _model()
    x = splits.train.x[:5]
    images = image_features(model, x)
    assert images.shape == (5, model.config.embed_dim)
    assert torch.allclose(images.norm(dim=1), torch.ones(5), atol=1e-5)
    with torch.no_grad():
        texts = model.embed_text(["the digit seven", "七是奇数", "a handwritten zero"])
        alone = model.embed_text(["七是奇数"])
    assert torch.allclose(texts.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(texts[1], alone[0], atol=1e-6)  # padding to a fixed length: the batch does not matter


def test_forward_returns_the_loss_and_metrics(splits):
    model = _model().train()
    loss, metrics = model((splits.train.x[:16], splits.train.y[:16]))
    assert loss.ndim == 0 and loss.requires_grad
    assert set(metrics) == {"loss", "temperature", "batch_accuracy"}
    assert 0 <= metrics["batch_accuracy"] <= 1
    loss.backward()
    assert model.log_scale.grad is not None


def test_seeded_construction_is_reproducible(splits):
    a, b, c = _model(seed=3), _model(seed=3), _model(seed=4)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert any(not torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values(), strict=True))
    x = splits.val.x[:4]
    assert torch.equal(image_features(a, x), image_features(b, x))


@pytest.mark.parametrize("change", [{"heads": 3}, {"patch": 3}, {"embed_dim": 1}, {"dropout": 1.0}, {"init_temperature": 0.0}, {"max_scale": 2.0}])
def test_the_config_rejects_what_it_cannot_build(change):
    with pytest.raises(ValueError):
        CLIPConfig(**change)


def test_a_short_run_learns_zero_shot_classification(splits):
    set_seed(0)
    model = CLIP(CLIPConfig())
    before = zero_shot_accuracy(model, splits.val.x, splits.val.y, "en")
    config = TrainConfig(optimizer="adamw", lr=2e-3, batch_size=64, epochs=20, schedule="cosine", patience=0, device="cpu")
    fit(model, (splits.train.x, splits.train.y), config, progress=False)
    after = {lang: zero_shot_accuracy(model, splits.val.x, splits.val.y, lang) for lang in LANGUAGES}
    assert after["en"] > 0.6 and after["zh"] > 0.5, (before, after)  # chance is 0.1
    recall = retrieval_recall_at_1(model, splits.val.x, splits.val.y, "en", torch.Generator().manual_seed(0))
    assert recall["image_to_text"] > 0.5 and recall["text_to_image"] > 0.5
    both = [retrieval_recall_at_1(model, splits.val.x, splits.val.y, lang, torch.Generator().manual_seed(0))["image_to_text"] for lang in LANGUAGES]
    assert 1 - SPEC.validate(model, splits) == pytest.approx(sum(both) / 2)  # early stopping never reads the zero-shot prompts


def test_cli_trains_and_evaluates_clip(tmp_path, capsys):
    from unimodel.cli import main

    out = tmp_path / "clip"
    assert main(["train", "clip", "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"zero_shot_en", "zero_shot_zh", "image_to_text_en", "text_to_image_zh"} <= set(report) and report["model"] == "clip"
    assert main(["sample", str(out), "--out", str(tmp_path / "x.png")]) == 2
