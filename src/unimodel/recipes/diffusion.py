"""The DDPM on the digits and the 2-D mixtures (network: ``unimodel.models.diffusion``): its training
settings and its test scores, those of its samples (``unimodel.metrics``). Its loss is too noisy a
validation score, so it keeps its last weights."""

from __future__ import annotations

from unimodel.metrics import generated_scores
from unimodel.models.diffusion import Diffusion, DiffusionConfig
from unimodel.recipes import ModelSpec


def train_defaults(data: str) -> dict:
    """Training settings that work for a DDPM: Adam with a cosine decay, the last weights kept."""
    if data in ("ring", "grid"):  # 100,000 points: 200 steps per epoch
        return {"optimizer": "adam", "lr": 2e-3, "batch_size": 500, "epochs": 20, "schedule": "cosine", "patience": 0}
    return {"optimizer": "adam", "lr": 1e-3, "batch_size": 100, "epochs": 1000, "schedule": "cosine", "patience": 0}


SPEC = ModelSpec(
    config_cls=DiffusionConfig,
    model_cls=Diffusion,
    validate=None,  # the simple loss is a noisy score: the last weights are kept
    evaluate=lambda model, splits, seed=0, **_options: generated_scores(model.sample, splits, seed),
    sample=lambda model, n, generator: model.sample(n, generator),
    train_defaults=train_defaults,
)
