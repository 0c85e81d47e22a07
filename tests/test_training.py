"""The generic training loop: it lowers the loss, stops early, keeps the best
weights, writes checkpoints atomically and resumes exactly."""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path

import pytest
import torch

from unimodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from unimodel.data import digits_splits
from unimodel.models.vae import VAE, VAEConfig
from unimodel.recipes.vae import validation_score
from unimodel.runs import load_run, train_run
from unimodel.training import TrainConfig, fit


@pytest.fixture(scope="module")
def splits():
    return digits_splits()


@pytest.fixture(scope="module")
def data(splits):
    return (splits.train.x[:256], splits.train.y[:256])


def _vae(seed: int = 0, hidden_dim: int = 32) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(hidden_dim=hidden_dim))


def _config(**overrides) -> TrainConfig:
    return TrainConfig(**{"epochs": 3, "batch_size": 32, "device": "cpu", "seed": 0, "patience": 0, **overrides})


def _scores(values):
    """A validate function that returns ``values`` one epoch after the other."""
    values = iter(values)
    return lambda model: next(values)


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ learning


def test_fit_lowers_training_loss_and_validation_score(splits):
    model = _vae()
    result = fit(
        model,
        (splits.train.x, splits.train.y),
        _config(epochs=4, batch_size=64),
        validate=lambda m: validation_score(m, splits.val.x[:200]),
        progress=False,
    )
    losses = [record["loss"] for record in result.history]
    vals = [record["val"] for record in result.history]
    assert [record["epoch"] for record in result.history] == [1, 2, 3, 4]
    assert losses[-1] < losses[0] - 10
    assert vals[-1] < vals[0] - 10
    assert result.best_val == min(vals) and result.best_epoch == vals.index(min(vals)) + 1
    assert not result.stopped_early
    assert not model.training  # left in eval mode


def test_train_config_validation():
    for bad in ({"epochs": 0}, {"batch_size": -1}, {"lr": 0.0}, {"lr": float("nan")}, {"patience": -1}, {"optimizer": "sgd"}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


# ------------------------------------------------------------------ early stopping and best weights


def test_early_stopping_when_patience_is_exceeded(data):
    model = _vae(hidden_dim=16)
    result = fit(model, data, _config(epochs=20, patience=2), validate=_scores(float(i) for i in range(1, 100)), progress=False)
    # epoch 1 is the best; epochs 2 and 3 are two epochs without improvement: stop
    assert result.stopped_early
    assert len(result.history) == 3
    assert result.best_epoch == 1 and result.best_val == 1.0


def test_resume_with_more_patience_continues_a_run_that_stopped_early(data, tmp_path):
    path = tmp_path / "checkpoint.pt"
    scores = [float(i) for i in range(1, 100)]
    first = fit(_vae(hidden_dim=16), data, _config(epochs=20, patience=2), validate=_scores(scores), checkpoint=path, progress=False)
    assert first.stopped_early and len(first.history) == 3
    same = fit(_vae(hidden_dim=16), data, _config(epochs=20, patience=2), validate=_scores(scores[3:]), checkpoint=path, resume=True, progress=False)
    assert same.stopped_early and len(same.history) == 3  # the same patience: nothing more to do
    more = fit(_vae(hidden_dim=16), data, _config(epochs=20, patience=4), validate=_scores(scores[3:]), checkpoint=path, resume=True, progress=False)
    assert more.stopped_early and len(more.history) == 5  # two more epochs without improvement
    assert more.best_epoch == 1


def test_patience_zero_never_stops_early(data):
    result = fit(_vae(hidden_dim=16), data, _config(epochs=5, patience=0), validate=_scores(float(i) for i in range(1, 100)), progress=False)
    assert not result.stopped_early and len(result.history) == 5


def test_model_ends_with_the_best_validation_weights(data):
    model = _vae(hidden_dim=16)
    seen = {}
    result = fit(
        model,
        data,
        _config(epochs=4),
        validate=_scores([3.0, 1.0, 2.0, 4.0]),
        callbacks=[lambda epoch, record, m: seen.__setitem__(epoch, copy.deepcopy(m.state_dict()))],
        progress=False,
    )
    assert sorted(seen) == [1, 2, 3, 4]
    assert result.best_epoch == 2 and result.best_val == 1.0
    assert _same_weights(model.state_dict(), seen[2])
    assert not _same_weights(model.state_dict(), seen[4])


def test_without_validation_the_last_epoch_is_kept(data):
    model = _vae(hidden_dim=16)
    seen = {}
    result = fit(model, data, _config(epochs=2), callbacks=[lambda e, r, m: seen.__setitem__(e, copy.deepcopy(m.state_dict()))], progress=False)
    assert result.best_epoch == 2 and result.best_val != result.best_val  # nan
    assert _same_weights(model.state_dict(), seen[2])


# ------------------------------------------------------------------ checkpoints


def test_checkpoint_is_written_atomically_and_loads_weights_only(data, tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    model = _vae(hidden_dim=16)
    fit(model, data, _config(epochs=2), validate=_scores([2.0, 1.0]), checkpoint=path, meta={"model": "vae", "config": {"hidden_dim": 16}}, progress=False)
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]  # no leftover temporary files
    saved = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and containers only
    assert saved["meta"] == {"model": "vae", "config": {"hidden_dim": 16}}
    assert saved["loop"]["epoch"] == 2 and len(saved["loop"]["history"]) == 2
    assert _same_weights(saved["best_state"], model.state_dict())
    assert load_checkpoint(path).keys() == saved.keys()


def test_checkpoint_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model_state": {}})
    umask = os.umask(0)
    os.umask(umask)
    # like open(): 0o666 less the umask, not the 0o600 of a private temporary file
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_crash_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model_state": {"w": torch.ones(3)}, "loop": {"epoch": 1}})
    before = path.read_bytes()

    def crashing_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(before[: len(before) // 2])  # a half-written file ...
        raise OSError("disk full")  # ... then the crash

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"model_state": {"w": torch.zeros(3)}, "loop": {"epoch": 2}})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    saved = load_checkpoint(path)
    assert saved["loop"]["epoch"] == 1 and torch.equal(saved["model_state"]["w"], torch.ones(3))


def test_a_crash_during_training_leaves_the_last_finished_epoch(data, tmp_path):
    path = tmp_path / "checkpoint.pt"

    def crash_in_epoch_3(epoch, record, model):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(_vae(hidden_dim=16), data, _config(epochs=5), checkpoint=path, callbacks=[crash_in_epoch_3], progress=False)
    saved = load_checkpoint(path)
    assert saved["loop"]["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    # and training resumes from it
    result = fit(_vae(hidden_dim=16), data, _config(epochs=4), checkpoint=path, resume=True, progress=False)
    assert [record["epoch"] for record in result.history] == [1, 2, 3, 4]


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)  # a folder, not a file
    noise = tmp_path / "noise.pt"
    noise.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(noise)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError):
        load_checkpoint(empty)
    for i, foreign in enumerate([{"weights": torch.ones(2)}, [torch.ones(2)], torch.ones(2)]):
        other = tmp_path / f"other{i}.pt"
        torch.save(foreign, other)
        with pytest.raises(CheckpointError, match="not a unimodel checkpoint"):
            load_checkpoint(other)
    # a pickle of an arbitrary object is refused by weights_only=True, never executed
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Path("/etc/passwd"), protocol=2))
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)


# ------------------------------------------------------------------ resume


def test_resume_gives_the_same_weights_as_training_straight_through(data, tmp_path):
    straight = _vae()
    whole = fit(straight, data, _config(epochs=6), validate=lambda m: validation_score(m, data[0][:64]), checkpoint=tmp_path / "a.pt", progress=False)

    first = _vae()
    fit(first, data, _config(epochs=3), validate=lambda m: validation_score(m, data[0][:64]), checkpoint=tmp_path / "b.pt", progress=False)
    torch.manual_seed(1234)  # whatever happened in between must not matter
    torch.randn(100)
    resumed = _vae(seed=99)  # fresh, differently initialised: the checkpoint supplies the weights
    rest = fit(
        resumed, data, _config(epochs=6), validate=lambda m: validation_score(m, data[0][:64]), checkpoint=tmp_path / "b.pt", resume=True, progress=False
    )

    assert [r["epoch"] for r in rest.history] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in rest.history] == [r["loss"] for r in whole.history]
    assert [r["val"] for r in rest.history] == [r["val"] for r in whole.history]
    assert rest.best_epoch == whole.best_epoch
    assert _same_weights(resumed.state_dict(), straight.state_dict())  # the best weights
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    assert _same_weights(a["model_state"], b["model_state"])  # the last weights
    assert torch.equal(a["rng_state"], b["rng_state"])


def test_resume_of_a_finished_run_trains_no_further(data, tmp_path):
    path = tmp_path / "c.pt"
    fit(_vae(hidden_dim=16), data, _config(epochs=2), checkpoint=path, progress=False)
    before = path.read_bytes()
    result = fit(_vae(hidden_dim=16), data, _config(epochs=2), checkpoint=path, resume=True, progress=False)
    assert len(result.history) == 2
    assert path.read_bytes() == before


def test_resume_uses_the_new_learning_rate(data, tmp_path):
    path = tmp_path / "d.pt"
    fit(_vae(hidden_dim=16), data, _config(epochs=1, lr=1e-3), checkpoint=path, progress=False)
    fit(_vae(hidden_dim=16), data, _config(epochs=2, lr=1e-5), checkpoint=path, resume=True, progress=False)
    saved = load_checkpoint(path)
    assert saved["train_config"]["lr"] == 1e-5
    assert [group["lr"] for group in saved["optimizer_states"]["model"]["param_groups"]] == [1e-5]


# ------------------------------------------------------------------ runs


def test_train_run_seeds_the_initial_parameters(splits, tmp_path):
    small = type(splits)(train=type(splits.train)(splits.train.x[:64], splits.train.y[:64]), val=splits.val, test=splits.test)
    config = _config(epochs=1, seed=5)
    runs = []
    for i, out in enumerate(["a", "b"]):
        torch.manual_seed(i)  # a different global state before each run
        runs.append(train_run("vae", {"hidden_dim": 16}, config, tmp_path / out, progress=False, splits=small))
    assert _same_weights(runs[0].model.state_dict(), runs[1].model.state_dict())
    other = train_run("vae", {"hidden_dim": 16}, _config(epochs=1, seed=6), tmp_path / "c", progress=False, splits=small)
    assert not _same_weights(runs[0].model.state_dict(), other.model.state_dict())
    loaded = load_run(tmp_path / "a")
    assert loaded.name == "vae" and loaded.model.config == VAEConfig(hidden_dim=16)
    assert _same_weights(loaded.model.state_dict(), runs[0].model.state_dict())
    assert len(loaded.result.history) == 1
