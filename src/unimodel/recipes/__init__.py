"""How each model is trained and judged, and the registry that looks models up by name.

A recipe (``recipes/vae.py`` for ``models/vae.py``) holds what is not the network: the training
settings that suit the model on the digits, the validation score early stopping reads, the test
scores, and a ``SPEC`` that ties them to the network. Recipes are imported only when asked for,
so the cache key of one chapter's figures does not depend on the code of another chapter's
model. A run's key hashes its model's recipe and, through the recipe's imports, the network; a
model's name is its recipe's file name (``recipes/cnn.py`` is ``cnn``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unimodel.data import Splits

HELPERS = ("classifier",)  # modules here that recipes share, not models


def _discover() -> dict[str, str]:
    """Every model's name, the name of its recipe's file, and the recipe's module.

    Found by the files, not listed: a list here would be code that every run's key hashes (each recipe
    imports this module), so that adding a model would retrain every other one.
    """
    found = (module.name for module in pkgutil.iter_modules(__path__) if module.name not in HELPERS)
    return {name: f"{__name__}.{name}" for name in sorted(found)}


MODELS = _discover()


@dataclass(frozen=True)
class ModelSpec:
    config_cls: type  # the model's @dataclass config
    model_cls: Callable[[Any], nn.Module]  # builds the model from a config
    validate: Callable[[nn.Module, Splits], float] | None  # validation score, lower is better; None keeps the last weights
    evaluate: Callable[..., dict]  # test metrics as a JSON-able dict
    sample: Callable[[nn.Module, int, torch.Generator], torch.Tensor] | None  # n images in [0, 1], (n, 64), or n points (n, 2); None for a classifier
    train_defaults: Callable[[str], dict] = lambda data: {}  # TrainConfig values that suit this model on this data set
    draw: Callable[[nn.Module, list[str], float | None, torch.Generator], torch.Tensor] | None = (
        None  # (model, prompts, guidance, generator): one image per prompt, (n, 64) in [0, 1]
    )
    caption: Callable[[nn.Module, torch.Tensor, str], list[str]] | None = None  # (model, images (n, 64) pixels, language): one caption per image
    prepare: Callable[..., None] | None = (
        None  # (model, splits, train_config, progress, trained=None): a stage trained before the model itself (a unified model's tokenizer), or taken from ``trained``
    )
    stage: Callable[[Any, Any], tuple[str, dict, Any]] | None = (
        None  # (config, train_config) -> (model, config, train config): ``prepare``'s stage as a run of another model, which a build trains once for all who share it
    )


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from: {', '.join(sorted(MODELS))}")
    return importlib.import_module(MODELS[name]).SPEC
