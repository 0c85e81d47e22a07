"""The digit classifiers as a family: the small CNN baseline, the shared loss and spec, training on a subset, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from unimodel.cli import main
from unimodel.data import digits_splits
from unimodel.models.convnet import ConvNet, ConvNetConfig
from unimodel.recipes import model_spec
from unimodel.recipes.classifier import accuracy
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit


def test_the_cnn_scores_every_class_and_its_loss_is_the_cross_entropy() -> None:
    set_seed(0)
    model = ConvNet(ConvNetConfig())
    x, y = digits_splits().train.x[:8], digits_splits().train.y[:8]
    logits = model.logits(x)
    assert logits.shape == (8, 10)
    model.eval()  # no dropout, so a second pass gives the same scores
    loss, metrics = model((x, y))
    assert loss.item() == pytest.approx(F.cross_entropy(model.logits(x), y).item(), rel=1e-6)
    assert metrics["accuracy"] == pytest.approx((model.logits(x).argmax(1) == y).float().mean().item())


@pytest.mark.parametrize("change", [{"data_dim": 2}, {"data_dim": 36}, {"channels": 0}, {"dropout": 1.0}, {"levels": 1}])
def test_the_cnn_config_rejects_what_it_cannot_build(change) -> None:
    with pytest.raises(ValueError):
        ConvNetConfig(**change)


def test_the_cnn_reads_larger_square_images() -> None:
    model = ConvNet(ConvNetConfig(data_dim=28 * 28))  # MNIST-sized: two poolings take 28 to 7
    assert model.logits(torch.zeros(3, 28 * 28, dtype=torch.long)).shape == (3, 10)


def test_a_short_cnn_run_beats_chance_by_far() -> None:
    splits = digits_splits()
    set_seed(0)
    model = ConvNet(ConvNetConfig())
    config = TrainConfig(**{**model_spec("cnn").train_defaults("digits"), "epochs": 5, "seed": 0, "device": "cpu"})
    fit(model, (splits.train.x, splits.train.y), config, validate=lambda m: 1 - accuracy(m, splits.val.x, splits.val.y), progress=False)
    assert accuracy(model, splits.val.x, splits.val.y) > 0.6  # chance is 0.1


def test_classifier_specs_validate_on_the_error_and_draw_no_samples() -> None:
    splits = digits_splits()
    for name in ("vit", "cnn"):
        spec = model_spec(name)
        set_seed(0)
        model = spec.model_cls(spec.config_cls())
        assert spec.sample is None
        assert spec.validate(model, splits) == pytest.approx(1 - accuracy(model, splits.val.x, splits.val.y))
        assert spec.evaluate(model, splits)["images"] == len(splits.test)


def test_keeping_the_first_training_examples_leaves_validation_and_test_alone() -> None:
    splits = digits_splits()
    small = splits.first(100)
    assert len(small.train) == 100 and torch.equal(small.train.x, splits.train.x[:100])
    assert small.val is splits.val and small.test is splits.test
    with pytest.raises(ValueError, match="cannot keep the first 5000"):
        splits.first(5000)


def test_cli_trains_and_evaluates_a_classifier_and_refuses_to_sample_it(tmp_path, capsys) -> None:
    out = tmp_path / "vit"
    assert main(["train", "vit", "--patch", "4", "--epochs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "vit" and 0 <= report["accuracy"] <= 1 and report["images"] == 447
    assert main(["sample", str(out), "--out", str(tmp_path / "x.png")]) == 2
    assert "which draws no samples" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_cli_rejects_points_for_an_image_classifier(tmp_path, capsys) -> None:
    assert main(["train", "cnn", "--data", "ring", "--out", str(tmp_path / "cnn")]) == 2
    assert "data_dim must be the pixels of a square image" in capsys.readouterr().err


def test_cli_reads_yes_no_flags_as_booleans(tmp_path, capsys) -> None:
    out = tmp_path / "bag"
    assert main(["train", "vit", "--patch", "4", "--positions", "false", "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    from unimodel.runs import load_run

    run = load_run(out)
    assert run.model.config.positions is False and not run.model.position.requires_grad
    assert torch.count_nonzero(run.model.position) == 0  # no position embeddings: a bag of patches
    assert main(["train", "vit", "--positions", "maybe", "--out", str(tmp_path / "x")]) == 2
    assert "expected true or false" in capsys.readouterr().err
