"""The Transfusion-style unified model on the digits (network: ``unimodel.models.transfusion``).

Its recipe is the unified model's (``unimodel.recipes.unified``): the same training settings, sequences
and scores, so that discrete codes and continuous patches are compared at the same budget. It has no
stage before the Transformer (no tokenizer). Its validation score averages the captions' cross-entropy
and λ times the flow-matching error, at times and noise drawn the same way every epoch."""

from __future__ import annotations

from dataclasses import replace

from unimodel.models.transfusion import Transfusion, TransfusionConfig
from unimodel.recipes.unified import SPEC as UNIFIED

SPEC = replace(UNIFIED, config_cls=TransfusionConfig, model_cls=Transfusion, prepare=None, stage=None)
