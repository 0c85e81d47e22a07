"""The taxonomy chapter's measurements: k-NN precision and recall, the judge's class scores, the table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from unimodel import metrics
from unimodel.cli import main
from unimodel.data import DIGIT_LEVELS, digits_splits

UNIFORM_NLL = 64 * math.log(DIGIT_LEVELS)  # nats per image when every pixel is uniform over its 17 levels


def _line(n: int) -> torch.Tensor:
    return torch.stack([torch.arange(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)], 1)  # (n, 2): 0, 1, ..., n-1 on the x axis


def test_precision_and_recall_of_a_set_against_itself_are_one() -> None:
    points = torch.randn(50, 5, generator=torch.Generator().manual_seed(0))
    assert metrics.knn_precision_recall(points, points) == {"precision": 1.0, "recall": 1.0}


def test_samples_far_from_every_real_one_have_neither_precision_nor_recall() -> None:
    assert metrics.knn_precision_recall(_line(10), _line(10) + 100.0) == {"precision": 0.0, "recall": 0.0}


def test_a_collapsed_generator_is_precise_but_recalls_one_point_in_ten() -> None:
    # every sample is the real point 0: each sits inside real balls (precision 1), but the samples' balls have
    # radius 0 (their k-th neighbour is another copy), so they cover the one real point they copy
    collapsed = torch.zeros(10, 2, dtype=torch.float64)
    assert metrics.knn_precision_recall(_line(10), collapsed) == {"precision": 1.0, "recall": pytest.approx(0.1)}


def test_the_ball_reaches_the_kth_neighbour_and_no_further() -> None:
    # real points 0..9: with k = 3 the ball of point 9 reaches its 3rd neighbour, 6, so it ends at 12; with k = 1 at 10
    real = _line(10)

    def precision(x: float, k: int) -> float:
        return metrics.knn_precision_recall(real, torch.tensor([[x, 0.0]] * 4, dtype=torch.float64), k=k)["precision"]

    assert precision(12.0, k=3) == 1.0 and precision(12.1, k=3) == 0.0
    assert precision(10.0, k=1) == 1.0 and precision(10.5, k=1) == 0.0
    assert precision(-3.0, k=3) == 1.0 and precision(-3.1, k=3) == 0.0


def test_precision_and_recall_need_more_samples_than_neighbours() -> None:
    with pytest.raises(ValueError, match="more than k = 3"):
        metrics.knn_precision_recall(_line(3), _line(10))


def _real_test_images() -> np.ndarray:
    test = digits_splits().test
    return test.x.numpy() / (DIGIT_LEVELS - 1)


def test_the_judge_reads_real_test_digits_well() -> None:
    assert metrics.judge_accuracy_on_test() > 0.85  # logistic regression: about 0.90 on this split, whose last 447 digits come from other writers
    scores = metrics.sample_scores(_real_test_images())
    assert scores["classes"] == 10
    assert scores["class_entropy"] > 0.99 * math.log(10)
    assert abs(scores["balanced_confidence"] - scores["confidence"]) < 0.05  # the classes are balanced already


def test_a_single_class_scores_a_tenth_of_its_confidence_when_balanced() -> None:
    test = digits_splits().test
    zeros = np.repeat(test.x[test.y == 0][:1].numpy() / (DIGIT_LEVELS - 1), 200, axis=0)
    scores = metrics.sample_scores(zeros)
    assert scores["classes"] == 1 and scores["class_entropy"] == 0.0
    assert scores["balanced_confidence"] == pytest.approx(scores["confidence"] / 10)


def test_bench_taxonomy_prints_the_table_as_json(capsys) -> None:
    """The whole table with a tiny budget: every family, its kind of likelihood, finite numbers where they exist."""
    assert main(["bench", "taxonomy", "--epochs", "1", "--long-epochs", "2", "--steps", "50", "--samples", "460", "--importance-samples", "5"]) == 0
    table = json.loads(capsys.readouterr().out)
    rows = table["rows"]
    assert list(rows) == ["pixelcnn", "vae", "gan", "diffusion", "diffusion-long"]
    assert {name: row["likelihood"] for name, row in rows.items()} == {
        "pixelcnn": "exact",
        "vae": "bound",
        "gan": "none",
        "diffusion": "bound",
        "diffusion-long": "bound",
    }
    assert rows["gan"]["nll"] is None
    for name in ("pixelcnn", "vae"):
        assert 0 < rows[name]["nll"] < UNIFORM_NLL
    assert math.isfinite(rows["diffusion"]["nll"]) and rows["diffusion"]["nll"] > 0
    assert [rows[name]["epochs"] for name in rows] == [1, 1, 1, 1, 2]
    for row in rows.values():
        assert row["ms_per_image"] > 0 and row["train_seconds"] > 0
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1 and 1 <= row["classes"] <= 10
    real = table["real"]
    assert real["judge_accuracy"] > 0.85 and real["classes"] == 10
    assert real["precision"] > 0.5 and real["recall"] > 0.5  # training digits against test digits


def test_bench_taxonomy_rejects_a_bad_budget_before_training(capsys) -> None:
    assert main(["bench", "taxonomy", "--samples", "0"]) == 2
    assert "samples must be an integer from 1 to" in capsys.readouterr().err
    assert main(["bench", "taxonomy", "--steps", "10"]) == 2  # beta_T would pass 1
    captured = capsys.readouterr()
    assert "use more steps" in captured.err and "training" not in captured.err
