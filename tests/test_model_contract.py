"""One contract every registered model honours, run over all of ``unimodel.recipes.MODELS``.

Each model's own test file checks what is particular to it; this file checks
what the CLI, the training loop, the cache and the site assume of every
model: the default config builds, one step's loss and metrics have the
agreed form, one epoch trains, a stored run loads back as it was trained,
its scores are JSON and its drawings and captions have their documented shapes.
A model added to ``MODELS`` is checked here without a line written for it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math

import pytest
import torch

from unimodel.cache import unimodel_imports
from unimodel.data import load_splits
from unimodel.recipes import MODELS, model_spec
from unimodel.runs import load_run, train_run
from unimodel.sources import module_source
from unimodel.training import TrainConfig, TrainResult

# what makes one epoch quick; every other setting is the model's default
SMALL = {
    "unified": {"tokenizer_epochs": 1},
    "masked": {"tokenizer_epochs": 1},
    "mot": {"tokenizer_epochs": 1},
    "metaqueries": {"tokenizer_epochs": 1},
    "diffusion": {"steps": 50},
}
# scored on fewer samples: the importance-sampled NLL with a few per image, a few drawings per digit
FEW = {
    "vae": {"k": 8},
    "unified": {"per_class": 2},
    "masked": {"per_class": 2},
    "mot": {"per_class": 2},
    "transfusion": {"per_class": 2},
    "metaqueries": {"per_class": 2},
}
TRAIN_EXAMPLES = 64
TEST_EXAMPLES = 12


def _data(name: str) -> str:
    """The data set a model's default config is built for: 2-D points or the 8x8 digits."""
    return "ring" if model_spec(name).config_cls().data_dim == 2 else "digits"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """Every model trained for one epoch on a few examples, as (run, folder, splits)."""
    runs = {}
    for name in MODELS:
        spec, data = model_spec(name), _data(name)
        splits = load_splits(data).first(TRAIN_EXAMPLES).first_test(TEST_EXAMPLES)
        settings = TrainConfig(**{**spec.train_defaults(data), "epochs": 1, "batch_size": 32, "seed": 0, "device": "cpu"})
        folder = tmp_path_factory.mktemp(name)
        run = train_run(name, SMALL.get(name, {}), settings, folder, data=data, progress=False, splits=splits)
        runs[name] = (run, folder, splits)
    return runs


def _same_result(a: TrainResult, b: TrainResult) -> bool:
    """Field by field, a NaN equal to a NaN (a model without validation reports best_val NaN)."""
    for field in dataclasses.fields(TrainResult):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if not (x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))):
            return False
    return True


@pytest.mark.parametrize("name", MODELS)
def test_the_default_config_builds_and_round_trips(name):
    spec = model_spec(name)
    config = spec.config_cls()
    assert spec.config_cls(**dataclasses.asdict(config)) == config
    model = spec.model_cls(config)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
    assert spec.model_cls.__module__.startswith("unimodel.models.") and MODELS[name].startswith("unimodel.recipes.")


@pytest.mark.parametrize("name", MODELS)
def test_the_network_module_holds_the_network_only(name):
    """Scoring, training settings and the training loop live in the model's recipe, never in the network's module."""
    module = model_spec(name).model_cls.__module__
    source, is_package = module_source(module)
    imported = unimodel_imports(module, source, is_package)
    assert not {m for m in imported if m.startswith(("unimodel.recipes", "unimodel.training", "unimodel.runs", "unimodel.metrics"))}, imported
    assert "SPEC" not in vars(importlib.import_module(module))


@pytest.mark.parametrize("name", MODELS)
def test_a_step_returns_a_scalar_loss_and_float_metrics(name):
    spec, data = model_spec(name), _data(name)
    splits = load_splits(data)
    torch.manual_seed(0)
    model = spec.model_cls(spec.config_cls(**SMALL.get(name, {})))
    model.train()
    batch = (splits.train.x[:16], splits.train.y[:16])
    for player in getattr(model, "players", None) or (None,):  # a GAN: each player's loss
        loss, metrics = model(batch, player) if player else model(batch)
        assert loss.shape == () and loss.requires_grad and torch.isfinite(loss)
        assert isinstance(metrics, dict) and all(isinstance(k, str) and isinstance(v, float) for k, v in metrics.items())


@pytest.mark.parametrize("name", MODELS)
def test_one_epoch_trains_and_the_stored_run_loads_back_as_trained(name, trained):
    run, folder, splits = trained[name]
    assert len(run.result.history) == 1 and run.result.best_epoch == 1
    assert math.isnan(run.result.best_val) == (run.spec.validate is None)  # no validation: no best score
    loaded = load_run(folder)
    assert loaded.name == name and loaded.data == run.data
    assert _same_result(loaded.result, run.result)
    for (key, a), (other, b) in zip(run.model.state_dict().items(), loaded.model.state_dict().items(), strict=True):
        assert key == other and torch.equal(a, b), key
    assert not loaded.model.training  # a loaded run is ready to use


@pytest.mark.parametrize("name", MODELS)
def test_scores_are_json_and_the_same_for_the_loaded_run(name, trained):
    run, folder, splits = trained[name]
    options = FEW.get(name, {})
    scores = run.spec.evaluate(run.model, splits, **options)
    assert isinstance(scores, dict) and scores
    assert json.loads(json.dumps(scores)) == scores
    assert run.spec.evaluate(load_run(folder).model, splits, **options) == scores


@pytest.mark.parametrize("name", MODELS)
def test_drawings_and_captions_have_their_documented_shapes(name, trained):
    run, _, splits = trained[name]
    spec, n = run.spec, 3
    if spec.sample is not None:
        drawn = spec.sample(run.model, n, torch.Generator().manual_seed(0))
        width = 2 if run.data != "digits" else 64
        assert drawn.shape == (n, width) and torch.isfinite(drawn).all()
        if run.data == "digits":
            assert drawn.min() >= 0 and drawn.max() <= 1
    if spec.draw is not None:
        images = spec.draw(run.model, ["七", "seven"], None, torch.Generator().manual_seed(0))
        assert images.shape == (2, 64) and images.min() >= 0 and images.max() <= 1
    if spec.caption is not None:
        for lang in ("zh", "en"):
            captions = spec.caption(run.model, splits.test.x[:n], lang)
            assert len(captions) == n and all(isinstance(c, str) and c for c in captions)
