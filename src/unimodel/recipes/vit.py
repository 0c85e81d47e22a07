"""The Vision Transformer on the digits (network: ``unimodel.models.vit``): its training settings; scored as every classifier is (``unimodel.recipes.classifier``)."""

from __future__ import annotations

from unimodel.models.vit import ViT, ViTConfig
from unimodel.recipes.classifier import classifier_spec


def train_defaults(data: str) -> dict:
    """Training settings that work for the tiny ViT on the 8x8 digits: AdamW, a cosine decay, early stopping on validation error."""
    return {"optimizer": "adamw", "lr": 5e-4, "batch_size": 64, "epochs": 100, "schedule": "cosine", "patience": 40}


SPEC = classifier_spec(ViTConfig, ViT, train_defaults)
