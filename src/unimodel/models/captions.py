"""The digits' captions in English and Chinese, and their tokenizer: the text side that CLIP, BLIP and the unified model share.

There are no captions on the web to learn from, so they are made up from
what is known about each digit: its name, its parity and whether it has a
closed loop ("round": 0, 6, 8, 9) or not ("open"), through a few training
templates. The zero-shot prompts come from another template, whose exact
strings never occur as a training caption.

Legend for shape comments: B captions, L tokens per caption (``CONTEXT``).
"""

from __future__ import annotations

import torch

LANGUAGES = ("en", "zh")

# ------------------------------------------------------------------ attributes of the digits

NAMES = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "zh": ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九"),
}
PARITY = {"en": ("even", "odd"), "zh": ("偶数", "奇数")}  # indexed by digit % 2
ROUND_DIGITS = frozenset({0, 6, 8, 9})  # digits drawn with a closed loop
SHAPE = {"en": ("open", "round"), "zh": ("开口", "圆")}  # indexed by digit in ROUND_DIGITS

# --8<-- [start:captions]
# the training captions: every template names the digit, and some add its parity and shape
TEMPLATES = {
    "en": (
        "the digit {name}",
        "an {parity} digit , {name}",
        "{name} , {parity} and {shape}",
        "{shape} and {parity} : {name}",
    ),
    "zh": (
        "数字{name}",
        "{name}是{parity}",
        "{parity} ， {shape} ： {name}",
    ),
}
# the zero-shot prompts: another template, never a training caption
PROMPTS = {"en": "a handwritten {name}", "zh": "手写的{name}"}
# --8<-- [end:captions]


def caption(digit: int, lang: str, template: str) -> str:
    """The caption of ``digit`` that ``template`` makes in ``lang``."""
    return template.format(name=NAMES[lang][digit], parity=PARITY[lang][digit % 2], shape=SHAPE[lang][digit in ROUND_DIGITS])


def training_captions(digit: int, lang: str) -> list[str]:
    """Every training caption of ``digit`` in ``lang``, one per template."""
    return [caption(digit, lang, template) for template in TEMPLATES[lang]]


def prompts(lang: str) -> list[str]:
    """The 10 zero-shot prompts of ``lang``, digit 0 first."""
    return [caption(digit, lang, PROMPTS[lang]) for digit in range(10)]


def draw_captions(labels: torch.Tensor, lang: str | None = None, generator: torch.Generator | None = None) -> list[str]:
    """One training caption per label, template (and language, when ``lang`` is None) drawn at random for each."""
    n = len(labels)
    langs = torch.randint(len(LANGUAGES), (n,), generator=generator).tolist() if lang is None else [LANGUAGES.index(lang)] * n
    picks = torch.rand(n, generator=generator).tolist()  # a template index per caption, scaled to its language's count
    out = []
    for digit, index, u in zip(labels.tolist(), langs, picks, strict=True):
        templates = TEMPLATES[LANGUAGES[index]]
        out.append(caption(digit, LANGUAGES[index], templates[min(int(u * len(templates)), len(templates) - 1)]))
    return out


# ------------------------------------------------------------------ tokenizer

PAD, EOS = "[PAD]", "[EOS]"


def words(text: str) -> list[str]:
    """Split a caption into tokens: English words at spaces, Chinese into characters (spaces ignored)."""
    tokens = []
    for piece in text.split():
        tokens += [piece] if piece.isascii() else list(piece)
    return tokens


def _every_text() -> list[str]:
    """Every caption the training templates and the prompts can make, in both languages."""
    return [text for lang in LANGUAGES for digit in range(10) for text in (*training_captions(digit, lang), prompts(lang)[digit])]


VOCAB = (PAD, EOS, *sorted({word for text in _every_text() for word in words(text)}))  # [PAD] is id 0, [EOS] id 1
TOKEN_ID = {word: i for i, word in enumerate(VOCAB)}
CONTEXT = max(len(words(text)) for text in _every_text()) + 1  # L: the longest caption and its [EOS]


def tokenize(captions: list[str]) -> torch.Tensor:
    """Token ids of the captions, each ended by [EOS] and padded with [PAD] to the fixed length ``CONTEXT``, (B, L) long."""
    ids = torch.full((len(captions), CONTEXT), TOKEN_ID[PAD], dtype=torch.long)
    for b, text in enumerate(captions):
        tokens = words(text)
        if len(tokens) + 1 > CONTEXT:
            raise ValueError(f"caption {text!r} has {len(tokens)} tokens; at most {CONTEXT - 1} fit")
        unknown = [t for t in tokens if t not in TOKEN_ID]
        if unknown:
            raise ValueError(f"caption {text!r} has tokens outside the vocabulary: {unknown}")
        ids[b, : len(tokens) + 1] = torch.tensor([TOKEN_ID[t] for t in tokens] + [TOKEN_ID[EOS]])
    return ids


def decode(ids: torch.Tensor) -> list[list[str]]:
    """The tokens of each row of ``ids`` (B, L), up to its [EOS] (left out)."""
    out = []
    for row in ids.tolist():
        tokens = [VOCAB[i] for i in row]
        out.append(tokens[: tokens.index(EOS)] if EOS in tokens else tokens)
    return out
