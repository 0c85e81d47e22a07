"""The GAN on the digits and the 2-D mixtures (network: ``unimodel.models.gan``): its training settings and
its test scores, those of its samples (``unimodel.metrics``). A GAN has no likelihood to hold out, so no
validation score: it keeps its last weights."""

from __future__ import annotations

from functools import partial

from unimodel.metrics import generated_scores
from unimodel.models.gan import GAN, GANConfig
from unimodel.recipes import ModelSpec


def train_defaults(data: str) -> dict:
    """Training settings that work for a GAN (the loop's defaults suit the VAE)."""
    if data in ("ring", "grid"):  # 100,000 points: 200 steps per epoch
        return {"optimizer": "adam", "lr": 4e-3, "beta1": 0.5, "batch_size": 500, "epochs": 40, "schedule": "cosine", "patience": 0}
    return {"optimizer": "adam", "lr": 1e-3, "beta1": 0.5, "batch_size": 100, "epochs": 200, "schedule": "cosine", "patience": 0}


SPEC = ModelSpec(
    config_cls=GANConfig,
    model_cls=GAN,
    validate=None,  # no likelihood to hold out: a GAN keeps its last weights
    evaluate=lambda model, splits, seed=0, rejection=None, **_options: generated_scores(partial(model.sample, rejection=rejection), splits, seed),
    sample=lambda model, n, generator: model.sample(n, generator),
    train_defaults=train_defaults,
)
