"""CapFilt (BLIP, Li et al. 2022, section 3.3) on the digits: clean a noisy set of image-caption pairs with the model itself.

BLIP's web captions are often wrong. CapFilt pre-trains a BLIP on them,
fine-tunes it on a small human-annotated set (COCO in the paper), then uses
its decoder as a captioner that writes a new caption for every web image
and its image-grounded encoder as a filter that drops every pair, web or
synthetic, that ITM does not judge a match. A new model is pre-trained on the
clean set and what survives.

Here the "human-annotated" set is the first ``clean`` training digits with
right captions; the "web" is the other training digits, a share ``noise`` of
which carry a caption of another digit. Captions are drawn from the
templates of a digit each time an image is read, so a pair is an image and
the digit its caption names; a synthetic caption is kept as the digit it
names. One fine-tuned copy plays both captioner and filter (the paper
fine-tunes two), and the captioner decodes greedily (the paper samples, for
more varied captions; ours would only vary the template).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch

from unimodel.data import Splits
from unimodel.models import blip
from unimodel.models.captions import LANGUAGES, words
from unimodel.recipes import blip as blip_recipe
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit


@dataclass
class CapFiltConfig:
    clean: int = 200  # training digits whose captions are right: the human-annotated set
    noise: float = 0.5  # share of the other ("web") digits whose caption names a wrong digit
    finetune_epochs: int = 20  # epochs of fine-tuning on the clean set
    finetune_lr: float = 2e-4  # learning rate of the fine-tuning
    seed: int = 0  # the noise, the captions judged and every model's initial weights

    def __post_init__(self) -> None:
        if self.clean < 1:
            raise ValueError(f"clean must be a positive number of digits, got {self.clean}")
        if not 0 <= self.noise <= 1:
            raise ValueError(f"noise must be in [0, 1], got {self.noise}")
        if self.finetune_epochs < 1 or not self.finetune_lr > 0:
            raise ValueError("finetune_epochs and finetune_lr must be positive")


# --8<-- [start:web]
def web_captions(y: torch.Tensor, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The digit each web caption names, (n,), and which of them are wrong, (n,) bool: a share ``noise`` names another digit."""
    wrong = torch.rand(len(y), generator=generator) < noise
    other = (y + 1 + torch.randint(9, (len(y),), generator=generator)) % 10  # uniform over the nine other digits
    return torch.where(wrong, other, y), wrong


# --8<-- [end:web]


# --8<-- [start:capfilt]
def caption_and_filter(model: blip.BLIP, x: torch.Tensor, named: torch.Tensor, generator: torch.Generator) -> dict:
    """The captioner and the filter over the web images x with the digits ``named`` by their captions.

    Returns "keep_web" (n,) bool, the web pairs ITM judges a match; and
    "synthetic" (n,), the digit the captioner's caption names (-1 when it
    names none or several), with "keep_synthetic" (n,) bool, the synthetic
    captions ITM judges a match. Each image is captioned and judged in a
    language drawn with ``generator``.
    """
    langs = [LANGUAGES[i] for i in torch.randint(len(LANGUAGES), (len(x),), generator=generator).tolist()]
    web = [blip.draw_captions(torch.tensor([d]), lang, generator)[0] for d, lang in zip(named.tolist(), langs, strict=True)]
    keep_web = blip.match_probability(model, x, web) > 0.5  # the filter on the web captions
    written = [None] * len(x)
    for lang in LANGUAGES:  # the captioner, one language at a time
        index = [i for i, other in enumerate(langs) if other == lang]
        captions, _ = blip.generate(model, x[index], lang)
        for i, tokens in zip(index, captions, strict=True):
            written[i] = blip.caption_text(tokens, lang)
    synthetic = torch.tensor([_single_digit(text, lang) for text, lang in zip(written, langs, strict=True)])
    keep_synthetic = (synthetic >= 0) & (blip.match_probability(model, x, written) > 0.5)  # the filter on the new captions
    return {"keep_web": keep_web, "synthetic": synthetic, "keep_synthetic": keep_synthetic}


# --8<-- [end:capfilt]


def _single_digit(text: str, lang: str) -> int:
    named = blip_recipe.named_digits(words(text), lang)
    return named.pop() if len(named) == 1 else -1


def _train(x: torch.Tensor, y: torch.Tensor, splits: Splits, train: TrainConfig, seed: int, start: blip.BLIP | None = None) -> blip.BLIP:
    """A BLIP trained on the pairs (x, the digits y), from scratch or from a copy of ``start``; early stopping on the clean validation split."""
    set_seed(seed)
    model = copy.deepcopy(start) if start is not None else blip.BLIP(blip.BLIPConfig())
    fit(model, (x, y), replace(train, seed=seed), validate=lambda m: blip_recipe.validation_error(m, splits), progress=False)
    return model


def scores(model: blip.BLIP, splits: Splits) -> dict:
    """The test scores of the chapter's table, each the mean of the two languages."""
    scores = blip_recipe.evaluate(model, splits)
    return {name: blip_recipe.mean_over_languages(scores, name) for name in ("zero_shot", "itm_hard", "caption_exact")}


def run(splits: Splits, train: TrainConfig, config: CapFiltConfig | None = None) -> dict:
    """Train the models of the experiment and measure them: the clean set alone, clean + web, and clean + what CapFilt keeps.

    ``train`` is every pre-training's settings; the fine-tuning uses the
    config's epochs and learning rate. Returns the test scores of each
    model and what the filter did (with the default CapFiltConfig unless ``config`` is given).
    """
    c = config or CapFiltConfig()
    x, y = splits.train.x, splits.train.y
    if c.clean >= len(y):
        raise ValueError(f"clean must leave web digits: the training split has {len(y)}, clean is {c.clean}")
    generator = torch.Generator().manual_seed(c.seed)
    named, wrong = web_captions(y[c.clean :], c.noise, generator)
    clean_x, clean_y, web_x = x[: c.clean], y[: c.clean], x[c.clean :]

    clean_only = _train(clean_x, clean_y, splits, train, c.seed)
    noisy = _train(x, torch.cat([clean_y, named]), splits, train, c.seed)
    finetune = replace(train, epochs=c.finetune_epochs, lr=c.finetune_lr, schedule="constant", patience=0)
    judge = _train(clean_x, clean_y, splits, finetune, c.seed, start=noisy)
    kept = caption_and_filter(judge, web_x, named, generator)
    keep_web, synthetic, keep_synthetic = kept["keep_web"], kept["synthetic"], kept["keep_synthetic"]
    bootstrapped_x = torch.cat([clean_x, web_x[keep_web], web_x[keep_synthetic]])
    bootstrapped_y = torch.cat([clean_y, named[keep_web], synthetic[keep_synthetic]])
    bootstrapped = _train(bootstrapped_x, bootstrapped_y, splits, train, c.seed)

    truth = y[c.clean :]
    return {
        "clean": c.clean,
        "web": len(web_x),
        "noise": c.noise,
        "finetune": {"epochs": c.finetune_epochs, "lr": c.finetune_lr},
        "wrong_web": int(wrong.sum()),
        "filter": {
            "wrong_dropped": (~keep_web[wrong]).float().mean().item(),  # the share of wrong web captions the filter drops
            "right_kept": keep_web[~wrong].float().mean().item(),  # the share of right web captions it keeps
            "synthetic_kept": keep_synthetic.float().mean().item(),
            "synthetic_right": (synthetic[keep_synthetic] == truth[keep_synthetic]).float().mean().item(),
        },
        "pairs": {"noisy": len(y), "bootstrapped": len(bootstrapped_y)},
        "wrong_pairs": {
            "noisy": wrong.float().sum().item() / len(y),
            "bootstrapped": (bootstrapped_y != torch.cat([clean_y, truth[keep_web], truth[keep_synthetic]])).float().mean().item(),
        },
        "scores": {
            name: scores(model, splits) for name, model in (("clean", clean_only), ("noisy", noisy), ("finetuned", judge), ("bootstrapped", bootstrapped))
        },
    }
