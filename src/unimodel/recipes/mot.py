"""The BAGEL-style mixture of Transformer experts on the digits (network: ``unimodel.models.mot``).

Its recipe is the unified model's (``unimodel.recipes.unified``): the same tokenizer stage, training
settings and scores, so that it differs from the dense model only in its blocks' weights."""

from __future__ import annotations

from dataclasses import replace

from unimodel.models.mot import MixtureOfTransformers
from unimodel.recipes.unified import SPEC as UNIFIED

SPEC = replace(UNIFIED, model_cls=MixtureOfTransformers)
