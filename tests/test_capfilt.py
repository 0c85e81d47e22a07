"""CapFilt on the digits: the noisy web captions, the captioner and the filter wired right, and the whole experiment on a tiny budget."""

from __future__ import annotations

import math

import pytest
import torch

from unimodel.data import digits_splits
from unimodel.experiments import capfilt
from unimodel.models import blip, captions
from unimodel.models.blip import BLIP, BLIPConfig
from unimodel.recipes import blip as blip_recipe
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig


@pytest.fixture(scope="module")
def splits():
    return digits_splits()


def test_web_captions_name_another_digit_exactly_where_they_are_wrong():
    y = torch.arange(10).repeat(200)  # 2000 labels
    named, wrong = capfilt.web_captions(y, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(named != y, wrong)  # a wrong caption never names its own digit by chance
    assert abs(wrong.float().mean().item() - 0.3) < 0.04
    assert set(named[wrong].tolist()) == set(range(10))  # every digit can be named wrongly
    assert not capfilt.web_captions(y, 0.0, torch.Generator())[1].any()
    assert capfilt.web_captions(y, 1.0, torch.Generator())[1].all()


def test_an_oracle_filter_keeps_exactly_the_right_pairs(splits, monkeypatch):
    # a filter that knows the truth and a captioner that always names the true digit: CapFilt must keep exactly the right web pairs
    x, y = splits.train.x[:60], splits.train.y[:60]
    named, wrong = capfilt.web_captions(y, 0.5, torch.Generator().manual_seed(1))

    def match_probability(model, images, captions):
        digits = [y[(x == image).all(dim=1).nonzero()[0, 0]].item() for image in images]
        named = [capfilt._single_digit(text, "en" if text.isascii() else "zh") for text in captions]
        return torch.tensor([1.0 if d == n else 0.0 for d, n in zip(digits, named, strict=True)])

    def generate(model, images, lang):
        digits = [y[(x == image).all(dim=1).nonzero()[0, 0]].item() for image in images]
        return [captions.words(captions.training_captions(d, lang)[0]) for d in digits], []

    monkeypatch.setattr(blip, "match_probability", match_probability)
    monkeypatch.setattr(blip, "generate", generate)
    kept = capfilt.caption_and_filter(None, x, named, torch.Generator().manual_seed(2))
    assert torch.equal(kept["keep_web"], ~wrong)
    assert torch.equal(kept["synthetic"], y) and kept["keep_synthetic"].all()


def test_the_filter_drops_what_itm_rejects_and_captions_that_name_no_single_digit(splits, monkeypatch):
    x, y = splits.train.x[:4], splits.train.y[:4]
    monkeypatch.setattr(blip, "match_probability", lambda model, images, captions: torch.tensor([0.9, 0.2, 0.9, 0.6]))
    scripted = [["the", "digit", "one"], ["the", "digit", "two"], ["one", "two"], []]  # the last two name several digits or none
    monkeypatch.setattr(
        blip, "generate", lambda model, images, lang: ([scripted[i] for i in range(len(images))] if lang == "en" else ([["一"]] * len(images)), [])
    )
    kept = capfilt.caption_and_filter(None, x, y, torch.Generator().manual_seed(0))
    assert kept["keep_web"].tolist() == [True, False, True, True]
    langs = torch.randint(2, (4,), generator=torch.Generator().manual_seed(0)).tolist()  # the languages it drew, the generator's first use
    english = [i for i in range(4) if captions.LANGUAGES[langs[i]] == "en"]
    # the English captions name 1, 2, two digits, none (in the order of the English images); every Chinese one names 一
    expected = [[1, 2, -1, -1][english.index(i)] if i in english else 1 for i in range(4)]
    assert kept["synthetic"].tolist() == expected
    assert kept["keep_synthetic"].tolist() == [s >= 0 and p > 0.5 for s, p in zip(expected, [0.9, 0.2, 0.9, 0.6], strict=True)]


@pytest.mark.parametrize("change", [{"clean": 0}, {"noise": 1.5}, {"noise": -0.1}, {"finetune_epochs": 0}, {"finetune_lr": 0.0}])
def test_the_config_rejects_bad_settings(change):
    with pytest.raises(ValueError):
        capfilt.CapFiltConfig(**change)


def test_the_experiment_on_a_tiny_budget(splits):
    train = TrainConfig(**{**blip_recipe.train_defaults("digits"), "epochs": 1, "device": "cpu"})
    small = splits.first(300)
    with pytest.raises(ValueError, match="web"):
        capfilt.run(small, train, capfilt.CapFiltConfig(clean=300, finetune_epochs=1))
    out = capfilt.run(small, train, capfilt.CapFiltConfig(clean=100, finetune_epochs=1))
    assert out["clean"] == 100 and out["web"] == 200 and out["pairs"]["noisy"] == 300
    assert 100 <= out["pairs"]["bootstrapped"] <= 100 + 2 * 200  # the clean pairs, and at most a web and a new caption per web image
    assert out["wrong_pairs"]["noisy"] == pytest.approx(out["wrong_web"] / 300)
    assert set(out["scores"]) == {"clean", "noisy", "finetuned", "bootstrapped"}
    for scores in out["scores"].values():
        assert set(scores) == {"zero_shot", "itm_hard", "caption_exact"} and all(0 <= v <= 1 for v in scores.values())
    for name in ("wrong_dropped", "right_kept", "synthetic_kept"):
        assert 0 <= out["filter"][name] <= 1
    assert math.isnan(out["filter"]["synthetic_right"]) or 0 <= out["filter"]["synthetic_right"] <= 1


def test_scores_are_the_means_of_the_two_languages(splits, monkeypatch):
    set_seed(0)
    model = BLIP(BLIPConfig(dim=16, heads=2, image_depth=1, text_depth=1, dropout=0.0))
    monkeypatch.setattr(
        blip_recipe,
        "evaluate",
        lambda model, splits: {
            "zero_shot_en": 0.2,
            "zero_shot_zh": 0.4,
            "itm_hard_en": 0.5,
            "itm_hard_zh": 0.7,
            "caption_exact_en": 1.0,
            "caption_exact_zh": 0.0,
        },
    )
    assert capfilt.scores(model, splits) == pytest.approx({"zero_shot": 0.3, "itm_hard": 0.6, "caption_exact": 0.5})
