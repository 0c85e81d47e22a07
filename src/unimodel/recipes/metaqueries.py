"""The MetaQueries-style model on the digits (network: ``unimodel.models.metaqueries``).

Its first stage is its reader: a Chameleon-style model with the same training settings, trained on
the tasks ``reader`` names (a run of its own, which the hands-on chapter trains anyway: its model
or its ablation's understanding-only variant; the CLI trains it inline). Then only the queries, the connector and the decoder learn. The rest of
the recipe is the unified model's: training settings, validation, scores. Validation averages the
flow-matching error with the reader's caption error, which stays what it was: early stopping reads
the drawing alone."""

from __future__ import annotations

from dataclasses import asdict, replace

from unimodel.data import Splits
from unimodel.models.metaqueries import MetaQueries, MetaQueriesConfig
from unimodel.models.unified import Unified
from unimodel.recipes.unified import SPEC as UNIFIED
from unimodel.recipes.unified import train_tokenizer, validation_error
from unimodel.training import TrainConfig, fit


def reader_stage(config: MetaQueriesConfig, train_config: TrainConfig) -> tuple[str, dict, TrainConfig]:
    """Stage 1 as a run of its own: the reader, a unified model trained on the tasks ``reader`` names, with the same settings.

    A control with ``reader="untrained"`` lists it too (a stage cannot depend on the config's values) but never loads it.
    """
    return "unified", asdict(config.reader_config()), train_config


def prepare_reader(model: MetaQueries, splits: Splits, train_config: TrainConfig, progress: bool = True, trained: Unified | None = None) -> None:
    """Stage 1: the reader's weights, taken from ``trained`` (the stage's run) or trained here (its tokenizer, then its captions); then frozen.

    With ``reader="untrained"`` the reader keeps its random initial weights.
    """
    reader = model.reader
    if model.config.reader == "untrained":
        return
    if trained is not None:
        reader.load_state_dict(trained.state_dict())
    else:
        reader.requires_grad_(True)
        train_tokenizer(reader, splits, train_config, progress)  # and freezes the tokenizer
        fit(reader, (splits.train.x, splits.train.y), train_config, validate=lambda m: validation_error(m, splits), progress=progress)
    reader.requires_grad_(False)
    reader.eval()


SPEC = replace(UNIFIED, config_cls=MetaQueriesConfig, model_cls=MetaQueries, prepare=prepare_reader, stage=reader_stage)
