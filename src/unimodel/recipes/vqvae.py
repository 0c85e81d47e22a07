"""The VQ-VAE tokenizer on the digits (network: ``unimodel.models.vqvae``): its training settings, the
validation error early stopping reads, and its test scores (reconstruction, NLL, how many codes it uses)."""

from __future__ import annotations

import numpy as np
import torch

from unimodel.data import Splits
from unimodel.models.vqvae import VQVAE, VQVAEConfig, reconstruct
from unimodel.recipes import ModelSpec


def code_usage(model: VQVAE, x: torch.Tensor) -> dict[str, float]:
    """How many codebook entries the images use, and the perplexity of their histogram (K when all are equally used)."""
    counts = torch.bincount(model.encode(x).flatten(), minlength=model.config.codebook_size).float()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"codes_used": int((counts > 0).sum()), "perplexity": float(entropy.exp())}


def evaluate(model: VQVAE, splits: Splits, **_options) -> dict:
    """Test reconstruction NLL (nats / image), pixel error, codebook use, and the judge's accuracy on real and round-tripped digits."""
    from unimodel.metrics import judge

    x, y = splits.test.x, splits.test.y
    device = next(model.parameters()).device
    with torch.no_grad():
        nll = model.losses(x.to(device))["reconstruction"].mean().item()
        rebuilt = reconstruct(model, x.to(device)).cpu()
    real = x.float() / (model.config.levels - 1)
    labels = y.numpy()
    return {
        "nll": nll,
        "pixel_mae": float((rebuilt - real).abs().mean()),
        **code_usage(model, x.to(device)),
        "judge_real": float(judge().score(real.numpy(), labels)),
        "judge_reconstructed": float(judge().score(rebuilt.numpy(), labels)),
        "bits_per_image": float(model.config.codes * np.log2(model.config.codebook_size)),
        "images": len(x),
    }


def validation_error(model: VQVAE, splits: Splits) -> float:
    x = splits.val.x.to(next(model.parameters()).device)
    return model.losses(x)["reconstruction"].mean().item()


def train_defaults(data: str) -> dict:
    return {"epochs": 100, "lr": 2e-3, "optimizer": "adam", "patience": 20}


SPEC = ModelSpec(
    config_cls=VQVAEConfig,
    model_cls=VQVAE,
    validate=validation_error,
    evaluate=evaluate,
    sample=None,  # a tokenizer has no prior over its codes: the unified model is one
    train_defaults=train_defaults,
)
