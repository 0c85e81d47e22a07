"""BLIP on the digits (network: ``unimodel.models.blip``): how its three heads are scored.

Captions by exact match and by the digit they name; ITM on pairs whose wrong caption is drawn at
random or shares most attributes with the right one; zero-shot classification by ITC and by ITM;
the validation error early stopping reads, over the enabled losses; and its training settings."""

from __future__ import annotations

import torch

from unimodel.data import Splits
from unimodel.models.blip import BLIP, BLIPConfig, caption_text, generate, match_probability
from unimodel.models.captions import (
    LANGUAGES,
    NAMES,
    ROUND_DIGITS,
    TEMPLATES,
    caption,
    prompts,
    training_captions,
    words,
)
from unimodel.recipes import ModelSpec
from unimodel.recipes.clip import retrieval_recall_at_1, zero_shot_accuracy


def is_caption_of(tokens: list[str], digit: int, lang: str) -> bool:
    """Exact match: the tokens are one of the training captions of ``digit`` in ``lang``."""
    return any(tokens == words(text) for text in training_captions(digit, lang))


def named_digits(tokens: list[str], lang: str) -> set[int]:
    """The digits whose names occur among the tokens."""
    return {digit for digit, name in enumerate(NAMES[lang]) if name in tokens}


def caption_scores(model: BLIP, x: torch.Tensor, y: torch.Tensor, lang: str) -> dict:
    """Greedy captions of x in ``lang``: "exact", the share that is a training caption of the true digit; "digit", the share naming exactly the true digit."""
    captions, _ = generate(model, x, lang)
    digits = y.tolist()
    return {
        "exact": sum(is_caption_of(c, d, lang) for c, d in zip(captions, digits, strict=True)) / len(digits),
        "digit": sum(named_digits(c, lang) == {d} for c, d in zip(captions, digits, strict=True)) / len(digits),
    }


def closest_other_digit(digit: int, generator: torch.Generator) -> int:
    """Another digit sharing as many of parity and shape with ``digit`` as any does, drawn with ``generator``."""

    def shared(other: int) -> int:
        return (other % 2 == digit % 2) + ((other in ROUND_DIGITS) == (digit in ROUND_DIGITS))

    others = [d for d in range(10) if d != digit]
    best = max(shared(d) for d in others)
    candidates = [d for d in others if shared(d) == best]
    return candidates[int(torch.randint(len(candidates), (1,), generator=generator))]


def matching_pairs(y: torch.Tensor, lang: str, hard: bool, generator: torch.Generator) -> tuple[list[str], torch.Tensor]:
    """For every label, a caption of its digit and a caption of another digit in the same template: 2n captions and the 2n truths.

    The other digit is drawn uniformly (``hard`` False), or among those that
    share most attributes with the true one (``hard`` True), so only the
    name tells the caption apart: "seven, odd and open" against "three, odd
    and open".
    """
    templates = TEMPLATES[lang]
    captions, truth = [], []
    for digit in y.tolist():
        template = templates[int(torch.randint(len(templates), (1,), generator=generator))]
        if hard:
            other = closest_other_digit(digit, generator)
        else:
            other = (digit + 1 + int(torch.randint(9, (1,), generator=generator))) % 10
        captions += [caption(digit, lang, template), caption(other, lang, template)]
        truth += [1, 0]
    return captions, torch.tensor(truth)


def itm_accuracy(model: BLIP, x: torch.Tensor, y: torch.Tensor, lang: str, hard: bool, generator: torch.Generator) -> float:
    """The share of the 2n pairs of ``matching_pairs`` that ITM judges right (match when p > 1/2)."""
    captions, truth = matching_pairs(y, lang, hard, generator)
    probability = match_probability(model, x.repeat_interleave(2, dim=0), captions)
    return ((probability > 0.5).long() == truth).float().mean().item()


def itm_zero_shot_accuracy(model: BLIP, x: torch.Tensor, y: torch.Tensor, lang: str) -> float:
    """Zero-shot classification by ITM: the prompt of the 10 with the highest match probability, against the truth."""
    n, texts = len(x), prompts(lang)
    probability = match_probability(model, x.repeat_interleave(10, dim=0), texts * n).reshape(n, 10)
    return (probability.argmax(dim=1) == y.cpu()).float().mean().item()


def evaluate(model: BLIP, splits: Splits, seed: int = 0, **_options) -> dict:
    """Test scores of the enabled heads, in both languages: zero-shot by ITC and by ITM, ITM accuracy, caption accuracy."""
    test, c = splits.test, model.config
    scores: dict = {"images": len(test)}
    for lang in LANGUAGES:
        if c.itc:
            scores[f"zero_shot_{lang}"] = zero_shot_accuracy(model, test.x, test.y, lang)
            recall = retrieval_recall_at_1(model, test.x, test.y, lang, torch.Generator().manual_seed(seed))
            scores[f"image_to_text_{lang}"] = recall["image_to_text"]
        if c.itm:
            scores[f"zero_shot_itm_{lang}"] = itm_zero_shot_accuracy(model, test.x, test.y, lang)
            for kind, hard in (("random", False), ("hard", True)):
                scores[f"itm_{kind}_{lang}"] = itm_accuracy(model, test.x, test.y, lang, hard, torch.Generator().manual_seed(seed))
        if c.lm:
            captions = caption_scores(model, test.x, test.y, lang)
            scores[f"caption_exact_{lang}"], scores[f"caption_digit_{lang}"] = captions["exact"], captions["digit"]
    return scores


def mean_over_languages(scores: dict, name: str) -> float | None:
    """The mean of the scores ``{name}_{lang}`` of ``evaluate`` over the languages; None when the model lacks that head."""
    values = [scores[f"{name}_{lang}"] for lang in LANGUAGES if f"{name}_{lang}" in scores]
    return sum(values) / len(values) if values else None


def validation_error(model: BLIP, splits: Splits) -> float:
    """The mean, over the enabled losses and both languages, of the validation errors they are read by.

    ITC: 1 - image-to-text recall@1 with training captions; ITM: 1 - the
    accuracy on hard pairs; LM: 1 - the exact-match share of the captions.
    The zero-shot prompts take no part in choosing the weights.
    """
    val, c = splits.val, model.config
    errors = []
    for lang in LANGUAGES:
        if c.itc:
            errors.append(1 - retrieval_recall_at_1(model, val.x, val.y, lang, torch.Generator().manual_seed(0))["image_to_text"])
        if c.itm:
            errors.append(1 - itm_accuracy(model, val.x, val.y, lang, True, torch.Generator().manual_seed(0)))
        if c.lm:
            errors.append(1 - caption_scores(model, val.x, val.y, lang)["exact"])
    return sum(errors) / len(errors)


def train_defaults(data: str) -> dict:
    """Training settings that work for the tiny BLIP on the 8x8 digits: AdamW, a cosine decay, early stopping on validation."""
    return {"optimizer": "adamw", "lr": 2e-3, "batch_size": 64, "epochs": 60, "schedule": "cosine", "patience": 20}


SPEC = ModelSpec(
    config_cls=BLIPConfig,
    model_cls=BLIP,
    validate=validation_error,
    evaluate=evaluate,
    sample=None,
    train_defaults=train_defaults,
    caption=lambda model, x, lang: [caption_text(tokens, lang) for tokens in generate(model, x, lang)[0]],
)
