"""PixelCNN on the digits (network: ``unimodel.models.pixelcnn``): its training settings, and its exact
negative log-likelihood, which early stopping reads on the validation split and the test reports."""

from __future__ import annotations

import math

import torch

from unimodel.data import Splits
from unimodel.models.pixelcnn import PixelCNN, PixelCNNConfig
from unimodel.recipes import ModelSpec


@torch.no_grad()
def nll(model: PixelCNN, x: torch.Tensor, batch_size: int = 500) -> float:
    """Exact negative log-likelihood in nats per image, averaged over the images x (N, P)."""
    device = next(model.parameters()).device
    return -torch.cat([model.log_prob(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]).mean().item()


def evaluate(model: PixelCNN, splits: Splits, **_options) -> dict[str, float]:
    """Test NLL in nats per image and in bits per pixel: exact, so no samples and no seed (``_options`` are ignored)."""
    model.eval()
    value = nll(model, splits.test.x)
    return {"nll": value, "bits_per_dim": value / (model.config.data_dim * math.log(2)), "images": len(splits.test)}


def train_defaults(data: str) -> dict:
    """Training settings that work for the PixelCNN on the 8x8 digits: early stopping on the validation NLL."""
    return {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 200, "patience": 20}


SPEC = ModelSpec(
    config_cls=PixelCNNConfig,
    model_cls=PixelCNN,
    validate=lambda model, splits: nll(model, splits.val.x),
    evaluate=evaluate,
    sample=lambda model, n, generator: model.sample(n, generator),
    train_defaults=train_defaults,
)
