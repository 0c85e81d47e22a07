"""The CLIP page's control prompts: what they are made of, and the loss floor the page cites."""

from __future__ import annotations

import math

import pytest
import torch

from unimodel.chapters import clip as chapter
from unimodel.models import captions


@pytest.mark.parametrize("lang", captions.LANGUAGES)
def test_every_control_prompt_tokenizes_to_known_tokens(lang):
    texts = [p for templates in chapter.CONTROLS.values() for p in chapter.control_prompts(templates[lang], lang)] + chapter.attribute_prompts(lang)
    ids = captions.tokenize(texts)  # raises on a token outside the vocabulary or a prompt too long
    for text, tokens in zip(texts, captions.decode(ids), strict=True):
        assert tokens == captions.words(text)
        assert "[PAD]" not in tokens


def test_the_tokenizer_refuses_a_word_outside_the_vocabulary():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        captions.tokenize(["a photo of a seven"])


@pytest.mark.parametrize("lang", captions.LANGUAGES)
def test_the_new_position_puts_the_name_where_no_training_template_does(lang):
    template = chapter.CONTROLS["new_position"][lang]
    assert template not in captions.TEMPLATES[lang]
    used = {i for t in captions.TEMPLATES[lang] for i in chapter.name_positions(t, lang)}
    used_anywhere = {i for other in captions.LANGUAGES for t in captions.TEMPLATES[other] for i in chapter.name_positions(t, other)}
    new = chapter.name_positions(template, lang)
    assert len(new) == 1 and not set(new) & used and not set(new) & used_anywhere


@pytest.mark.parametrize("lang", captions.LANGUAGES)
def test_every_control_differs_from_every_training_caption(lang):
    training = {text for digit in range(10) for text in captions.training_captions(digit, lang)}
    for name, templates in chapter.CONTROLS.items():
        assert not set(chapter.control_prompts(templates[lang], lang)) & training, name
    assert not set(chapter.attribute_prompts(lang)) & training


@pytest.mark.parametrize("lang", captions.LANGUAGES)
def test_only_the_page_prompts_hold_untrained_words(lang):
    trained = chapter.training_words(lang)
    for name, templates in chapter.CONTROLS.items():
        words = {w for p in chapter.control_prompts(templates[lang], lang) for w in captions.words(p)}
        if name == "page":
            assert words - trained, "the page's prompts were meant to hold words no training caption has"
        else:
            assert words <= trained, (name, words - trained)
    assert {w for p in chapter.attribute_prompts(lang) for w in captions.words(p)} <= trained


@pytest.mark.parametrize("lang", captions.LANGUAGES)
def test_the_attribute_prompts_name_no_digit_and_sort_the_digits_into_four_classes(lang):
    names = set(captions.NAMES[lang])
    assert not {w for p in chapter.attribute_prompts(lang) for w in captions.words(p)} & names
    classes = [chapter.attribute_class(d) for d in range(10)]
    assert sorted(set(classes)) == [0, 1, 2, 3]
    for d in range(10):  # the prompt of a digit's class holds the digit's own parity and shape
        prompt = chapter.attribute_prompts(lang)[chapter.attribute_class(d)]
        assert captions.PARITY[lang][d % 2] in prompt and captions.SHAPE[lang][d in captions.ROUND_DIGITS] in prompt


def test_the_loss_floor_is_the_mean_of_ln_k_by_simulation():
    labels = torch.arange(10).repeat(100)  # 1000 labels, 10 digits of equal share
    floor = chapter.loss_floor(labels, 64)
    generator = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(400):
        order = labels[torch.randperm(len(labels), generator=generator)]
        for batch in order.split(64):
            same = (batch[:, None] == batch[None, :]).sum(1).double()  # K of each pair, itself included
            draws.append(same.log().mean().item())
    assert abs(floor - sum(draws) / len(draws)) < 0.01
    assert floor < math.log(1 + 63 / 10)  # Jensen: below ln E[K]
