"""CLIP on the digits (network: ``unimodel.models.clip``): zero-shot accuracy with prompts it never trained
on, retrieval recall@1 both ways, the validation error early stopping reads, and its training settings."""

from __future__ import annotations

import torch

from unimodel.data import Splits
from unimodel.models.captions import LANGUAGES, draw_captions, prompts
from unimodel.models.clip import CLIP, CLIPConfig, image_features, text_features
from unimodel.recipes import ModelSpec


# --8<-- [start:zero-shot]
def zero_shot_accuracy(model: CLIP, x: torch.Tensor, y: torch.Tensor, lang: str) -> float:
    """The fraction of images x (n, 64) whose nearest of the 10 prompts in ``lang`` names their digit y."""
    similarity = image_features(model, x) @ text_features(model, prompts(lang)).T  # (n, 10)
    return (similarity.argmax(dim=1) == y.cpu()).float().mean().item()


# --8<-- [end:zero-shot]


def retrieval_recall_at_1(model: CLIP, x: torch.Tensor, y: torch.Tensor, lang: str, generator: torch.Generator) -> dict:
    """Recall@1 over the pairs (image, a training caption of its digit in ``lang`` drawn with ``generator``).

    "image_to_text": the fraction of images whose most similar caption among
    all n describes their digit; "text_to_image": the fraction of captions
    whose most similar image shows their digit.
    """
    y = y.cpu()
    similarity = image_features(model, x) @ text_features(model, draw_captions(y, lang, generator)).T  # (n, n)
    return {
        "image_to_text": (y[similarity.argmax(dim=1)] == y).float().mean().item(),
        "text_to_image": (y[similarity.argmax(dim=0)] == y).float().mean().item(),
    }


def evaluate(model: CLIP, splits: Splits, seed: int = 0, **_options) -> dict:
    """Zero-shot accuracy in both languages and retrieval recall@1 both ways, on the test split."""
    test = splits.test
    scores: dict = {"images": len(test), "temperature": model.temperature()}
    for lang in LANGUAGES:
        scores[f"zero_shot_{lang}"] = zero_shot_accuracy(model, test.x, test.y, lang)
        recall = retrieval_recall_at_1(model, test.x, test.y, lang, torch.Generator().manual_seed(seed))
        scores.update({f"{direction}_{lang}": value for direction, value in recall.items()})
    return scores


def validation_error(model: CLIP, splits: Splits) -> float:
    """1 - image-to-text recall@1 on the validation split with training captions, both languages averaged.

    Early stopping reads only training templates: the zero-shot prompts take no part in training or in choosing the weights.
    """
    recalls = [retrieval_recall_at_1(model, splits.val.x, splits.val.y, lang, torch.Generator().manual_seed(0))["image_to_text"] for lang in LANGUAGES]
    return 1.0 - sum(recalls) / len(recalls)


def train_defaults(data: str) -> dict:
    """Training settings that work for the tiny CLIP on the 8x8 digits: AdamW, a cosine decay, early stopping on validation retrieval."""
    return {"optimizer": "adamw", "lr": 2e-3, "batch_size": 64, "epochs": 100, "schedule": "cosine", "patience": 30}


SPEC = ModelSpec(
    config_cls=CLIPConfig,
    model_cls=CLIP,
    validate=lambda model, splits: validation_error(model, splits),
    evaluate=evaluate,
    sample=None,
    train_defaults=train_defaults,
)
