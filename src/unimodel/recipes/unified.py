"""The unified model on the digits (network: ``unimodel.models.unified``): how it is trained and judged.

Stage 1 trains its VQ tokenizer (a run of its own, shared by every run that needs it); the
validation error early stopping reads is the loss of each trained task; the test scores are
caption accuracy (written and ranked), drawings read by a judge trained on real digits, and
whether the drawings copy the training set. The other unified families (masked, mot,
transfusion) reuse all of it but the network; the Transfusion-style model has no stage 1."""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch

from unimodel.data import DIGIT_LEVELS, Splits
from unimodel.models.captions import LANGUAGES, NAMES
from unimodel.models.unified import (
    SequenceModel,
    Unified,
    UnifiedConfig,
    caption,
    caption_ids,
    caption_scores,
    caption_text,
    caption_words,
    draw,
    learned_directions,
    prompt_ids,
    sample,
    understanding_sequence,
)
from unimodel.models.vqvae import VQVAE
from unimodel.recipes import ModelSpec
from unimodel.recipes.vqvae import validation_error as tokenizer_error
from unimodel.training import TrainConfig, fit


def tokenizer_stage(config: UnifiedConfig, train_config: TrainConfig) -> tuple[str, dict, TrainConfig]:
    """Stage 1 as a run of its own: the VQ-VAE and the settings ``train_tokenizer`` trains it with (early stopping on validation)."""
    settings = TrainConfig(
        epochs=config.tokenizer_epochs, lr=config.tokenizer_lr, optimizer="adam", patience=20, seed=train_config.seed, device=train_config.device
    )
    return "vqvae", asdict(config.tokenizer_config()), settings


def train_tokenizer(model: Unified, splits: Splits, train_config: TrainConfig, progress: bool = True, trained: VQVAE | None = None) -> None:
    """Stage 1: train the VQ tokenizer alone on the training images, then freeze it; or take the weights of ``trained``, that stage's run."""
    if trained is not None:  # the same weights: the run starts from the seed's initial weights and trains as below
        model.tokenizer.load_state_dict(trained.state_dict())
    else:
        _, _, settings = tokenizer_stage(model.config, train_config)
        model.tokenizer.requires_grad_(True)
        fit(model.tokenizer, (splits.train.x,), settings, validate=lambda m: tokenizer_error(m, splits), progress=progress)
    model.tokenizer.requires_grad_(False)


def caption_accuracy(model: SequenceModel, x: torch.Tensor, y: torch.Tensor, lang: str, method: str = "ranked") -> dict[str, float]:
    """Share of captions that are exactly right (name and parity), and share that name the right digit."""
    written = caption(model, x, lang, method)
    exact = [words == caption_words(int(d), lang) for words, d in zip(written, y, strict=True)]
    named = [NAMES[lang][int(d)] in words for words, d in zip(written, y, strict=True)]
    return {"exact": float(np.mean(exact)), "names_digit": float(np.mean(named))}


def ranked_accuracy(model: SequenceModel, x: torch.Tensor, y: torch.Tensor, lang: str) -> dict[str, float]:
    """Share of ranked captions that are right, by each learned direction alone and by all of them ("learned")."""
    y = y.to(next(model.parameters()).device)
    scores = {direction: caption_scores(model, x, lang, (direction,)) for direction in learned_directions(model)}
    right = lambda s: float((s.argmax(1) == y).float().mean())  # noqa: E731
    return {**{direction: right(s) for direction, s in scores.items()}, "learned": right(sum(scores.values()))}


def judged_generation(model: SequenceModel, per_class: int, guidance: float | None, seed: int = 0, **drawing) -> dict:
    """Draw ``per_class`` images for each digit's name in each language; how often the judge reads the prompted digit.

    ``drawing``: more settings of the model's ``generate_images`` (the masked model's passes, the Transfusion-style model's Euler steps: ``steps``).

    Returns accuracy overall, per language and per digit (over both languages), the judge's mean
    probability of the prompted digit ("confidence"), the seconds the drawing took, the images
    (n, P), the prompted digits and the judge's reading.
    """
    from unimodel.metrics import judge

    generator = torch.Generator().manual_seed(seed)
    digits = torch.arange(10).repeat_interleave(per_class)
    images, langs = [], []
    started = time.perf_counter()
    for lang in LANGUAGES:
        prompts = [NAMES[lang][int(d)] for d in digits]
        images.append(model.eval().generate_images(prompts, guidance, generator, **drawing).cpu())
        langs += [lang] * len(prompts)
    seconds = time.perf_counter() - started  # drawing (and decoding), not judging
    images = torch.cat(images)
    prompted = digits.repeat(len(LANGUAGES)).numpy()
    probabilities = judge().predict_proba(images.numpy())  # (n, 10)
    read = probabilities.argmax(1)
    right = read == prompted
    return {
        "accuracy": float(right.mean()),
        "confidence": float(probabilities[np.arange(len(prompted)), prompted].mean()),
        "seconds": seconds,
        "per_language": {lang: float(right[np.array(langs) == lang].mean()) for lang in LANGUAGES},
        "per_digit": [float(right[prompted == d].mean()) for d in range(10)],
        "images": images,
        "prompted": prompted,
        "read": read,
    }


def diversity(images: torch.Tensor, train_rebuilt: torch.Tensor, train_images: torch.Tensor, test_images: torch.Tensor) -> dict:
    """Is the model copying its training set? Images (n, P) in [0, 1]; two images are the same when every pixel rounds to the same of the 17 levels.

    distinct: share of distinct drawings; copied: share that are a training image as the model's image
    tokens give it back (``train_rebuilt``, the model's ``rebuilt``: a copy of a training image's codes
    decodes to exactly that); nearest_train: median distance (pixels in [0, 1], L2) from a drawing
    to its nearest training image, beside the same median for the real test images.
    """
    at_levels = lambda a: [tuple(row) for row in (a.float() * (DIGIT_LEVELS - 1)).round().int().tolist()]  # noqa: E731
    rows, train_rows = at_levels(images), set(at_levels(train_rebuilt))
    nearest = lambda a: torch.cdist(a.float(), train_images.float()).min(1).values.median().item()  # noqa: E731
    return {
        "distinct": len(set(rows)) / len(rows),
        "copied": float(np.mean([row in train_rows for row in rows])),
        "nearest_train": nearest(images),
        "nearest_train_test": nearest(test_images),
    }


def evaluate(model: SequenceModel, splits: Splits, seed: int = 0, per_class: int = 50, **_options) -> dict:
    """Captioning accuracy on the test digits, generation judged by a classifier of real digits, diversity, and the ceilings."""
    from unimodel.metrics import judge

    c = model.config
    model.eval()
    device = next(model.parameters()).device
    test = splits.test
    scale = DIGIT_LEVELS - 1
    out: dict = {"tasks": c.tasks, "guidance": c.guidance, "per_class": per_class}
    rebuilt = model.rebuilt(test.x.to(device)).cpu()
    out["judge_real"] = float(judge().score(test.x.numpy() / scale, test.y.numpy()))
    out["judge_tokenized"] = float(judge().score(rebuilt.numpy(), test.y.numpy()))  # the ceiling: real test digits as the model's image tokens give them back
    if c.tasks != "generation":
        out["caption"] = {lang: caption_accuracy(model, test.x, test.y, lang, "greedy") for lang in LANGUAGES}  # written
        out["caption_exact"] = float(np.mean([out["caption"][lang]["exact"] for lang in LANGUAGES]))
    if learned_directions(model):  # a model that only draws, and gives no exact likelihood of a drawing, cannot rank captions
        out["ranked"] = {lang: ranked_accuracy(model, test.x, test.y, lang) for lang in LANGUAGES}
        out["ranked_exact"] = float(np.mean([out["ranked"][lang]["learned"] for lang in LANGUAGES]))
    if c.tasks != "understanding":
        judged = judged_generation(model, per_class, None, seed)
        out["generation"] = {key: judged[key] for key in ("accuracy", "per_language", "per_digit")}
        out["diversity"] = diversity(judged["images"], model.rebuilt(splits.train.x.to(device)).cpu(), splits.train.x / scale, test.x / scale)
    return out


def validation_error(model: SequenceModel, splits: Splits) -> float:
    """Mean cross-entropy of the target tokens of the validation digits, for each trained task, no prompt dropped.

    Each digit is read in one language, alternately Chinese and English: both languages count
    equally, at half the cost of reading every digit in both.
    """
    c = model.config
    device = next(model.parameters()).device
    x, y = splits.val.x.to(device), splits.val.y
    codes = model.codes(x)
    langs = torch.arange(len(x)) % len(LANGUAGES)
    errors = []
    if c.tasks != "understanding":
        errors.append(model.generation_losses(prompt_ids(y, langs), x, torch.Generator().manual_seed(0)).mean())  # the same draws each epoch
    if c.tasks != "generation":
        errors.append(model.sequence_losses(*understanding_sequence(codes, langs, caption_ids(y, langs)), x).mean())
    return torch.stack(errors).mean().item()


def train_defaults(data: str) -> dict:
    return {"epochs": 80, "lr": 1e-3, "optimizer": "adamw", "schedule": "cosine", "patience": 20}


SPEC = ModelSpec(
    config_cls=UnifiedConfig,
    model_cls=Unified,
    validate=validation_error,
    evaluate=evaluate,
    sample=sample,
    train_defaults=train_defaults,
    draw=draw,
    caption=lambda model, x, lang: [caption_text(words, lang) for words in caption(model, x, lang)],  # ranked, with every learned direction
    prepare=train_tokenizer,
    stage=tokenizer_stage,
)
