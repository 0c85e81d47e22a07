"""Flow matching on the digits and the 2-D mixtures (network: ``unimodel.models.flow``): the DDPM's training
settings, so that the two chapters compare objectives at the same budget, and the test scores of its samples
(``unimodel.metrics``). Like the DDPM's, its loss is too noisy a validation score: it keeps its last weights."""

from __future__ import annotations

from unimodel.metrics import generated_scores
from unimodel.models.flow import FlowConfig, FlowMatching
from unimodel.recipes import ModelSpec
from unimodel.recipes.diffusion import train_defaults

SPEC = ModelSpec(
    config_cls=FlowConfig,
    model_cls=FlowMatching,
    validate=None,  # the loss, at one random t and noise per example, is a noisy score: the last weights are kept
    evaluate=lambda model, splits, seed=0, **_options: generated_scores(model.sample, splits, seed),
    sample=lambda model, n, generator: model.sample(n, generator),
    train_defaults=train_defaults,  # the DDPM's: Adam with a cosine decay, 4000 steps on a mixture, 10,000 on the digits
)
