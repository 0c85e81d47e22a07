"""The Show-o-style masked unified model on the digits (network: ``unimodel.models.masked``).

Its recipe is the unified model's (``unimodel.recipes.unified``): the same tokenizer stage, training
settings and scores, so the two designs differ only in how they draw. Its validation score counts
the hidden codes' cross-entropy, at hiding ratios drawn the same way every epoch."""

from __future__ import annotations

from dataclasses import replace

from unimodel.models.masked import MaskedConfig, MaskedUnified
from unimodel.recipes.unified import SPEC as UNIFIED

SPEC = replace(UNIFIED, config_cls=MaskedConfig, model_cls=MaskedUnified)
