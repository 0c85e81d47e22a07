"""The small CNN on the digits (network: ``unimodel.models.convnet``): its training settings; scored as every classifier is (``unimodel.recipes.classifier``)."""

from __future__ import annotations

from unimodel.models.convnet import ConvNet, ConvNetConfig
from unimodel.recipes.classifier import classifier_spec


def train_defaults(data: str) -> dict:
    """The ViT's budget (AdamW, 100 epochs with a cosine decay, early stopping on the validation error), at the learning rate that suits a CNN."""
    return {"optimizer": "adamw", "lr": 2e-3, "batch_size": 64, "epochs": 100, "schedule": "cosine", "patience": 40}


SPEC = classifier_spec(ConvNetConfig, ConvNet, train_defaults)
