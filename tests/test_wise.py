"""WISE: WiScore's known values, its range checks, the published leaderboard, and the figures of the unified-model pages."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib import pyplot as plt

from unimodel.chapters import metaqueries as metaqueries_figures
from unimodel.chapters import uniworld as uniworld_figures
from unimodel.chapters import wise as wise_figures
from unimodel.experiments import wise
from unimodel.figures import style


def test_full_marks_give_one_and_zeros_give_zero():
    assert wise.wiscore(2, 2, 2) == pytest.approx(1.0)
    assert wise.wiscore(0, 0, 0) == 0.0


def test_the_weights_are_the_papers_and_sum_to_one():
    assert wise.WEIGHTS == {"consistency": 0.7, "realism": 0.2, "aesthetics": 0.1}
    assert sum(wise.WEIGHTS.values()) == pytest.approx(1.0)


def test_known_values():
    assert wise.wiscore(2, 1, 1) == pytest.approx(0.85)  # (1.4 + 0.2 + 0.1) / 2
    assert wise.wiscore(0, 2, 2) == pytest.approx(0.30)  # a beautiful, realistic, wrong image
    assert wise.wiscore(2, 0, 0) == pytest.approx(0.70)
    assert wise.wiscore(1, 1, 1) == pytest.approx(0.50)
    assert isinstance(wise.wiscore(1, 1, 1), float)


def test_each_score_weighs_as_its_weight():
    for i, name in enumerate(("consistency", "realism", "aesthetics")):
        low, high = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
        high[i] = 1.5
        assert wise.wiscore(*high) - wise.wiscore(*low) == pytest.approx(wise.WEIGHTS[name] * 1.0 / 2)


def test_monotone_in_each_score():
    grid = (0, 0.5, 1, 1.5, 2)
    for scores in itertools.product(grid, repeat=3):
        for i in range(3):
            if scores[i] < 2:
                higher = list(scores)
                higher[i] = scores[i] + 0.5
                assert wise.wiscore(*higher) > wise.wiscore(*scores)


@pytest.mark.parametrize("bad", [(-0.1, 1, 1), (1, 2.01, 1), (1, 1, 3), (float("nan"), 1, 1), (np.array([1.0, 2.5]), 1, 1)])
def test_out_of_range_scores_raise(bad):
    with pytest.raises(ValueError, match="between 0 and 2"):
        wise.wiscore(*bad)


def test_the_error_names_the_bad_score():
    with pytest.raises(ValueError, match="realism"):
        wise.wiscore(1, 5, 1)


def test_arrays_are_scored_elementwise():
    c, r, a = np.array([2, 0, 1, 2]), np.array([2, 0, 1, 1]), np.array([2, 0, 1, 1])
    scores = wise.wiscore(c, r, a)
    assert isinstance(scores, np.ndarray) and scores.shape == (4,)
    np.testing.assert_allclose(scores, [wise.wiscore(*s) for s in zip(c, r, a, strict=True)])
    np.testing.assert_allclose(wise.wiscore(np.array([2.0, 1.0]), 1, 1), [0.85, 0.5])  # scalars broadcast


def test_the_leaderboard_is_the_published_one_highest_first():
    board = {entry.model: entry.wiscore for entry in wise.LEADERBOARD}
    assert board == {"GPT-4o": 0.80, "FLUX.1-dev": 0.50, "BAGEL": 0.52, "MetaQuery-XL": 0.55, "UniWorld-V1": 0.55, "Emu3": 0.39, "Janus-Pro-7B": 0.35}
    scores = [entry.wiscore for entry in wise.LEADERBOARD]
    assert scores == sorted(scores, reverse=True)
    assert wise.LEADERBOARD[0].model == "GPT-4o" and wise.LEADERBOARD[-1].model == "Janus-Pro-7B"
    assert all(0 <= s <= 1 for s in scores)
    assert {entry.kind for entry in wise.LEADERBOARD} <= {"closed", "generation", "unified"}
    slugs = [entry.slug for entry in wise.LEADERBOARD]
    assert len(set(slugs)) == len(slugs) and all(s.replace("-", "").isalnum() for s in slugs)


def test_the_results_have_the_keys_the_pages_use():
    examples = wise_figures.examples()
    for key in ("perfect", "right_plain", "partly_right", "middling", "pretty_but_wrong", "zero", "consistency_only", "weights", "scores"):
        assert key in examples, key
    assert examples["perfect"] == pytest.approx(1.0)
    assert examples["right_plain"] == pytest.approx(0.85)
    assert examples["pretty_but_wrong"] == pytest.approx(0.30)
    assert examples["weights"]["consistency"] == 0.7
    board = wise_figures.leaderboard_numbers()
    assert set(board["scores"]) == {entry.slug for entry in wise.LEADERBOARD}
    assert board["gap_closed_open"] == pytest.approx(0.25)  # 0.80 against 0.55
    assert board["uniworld_over_flux"] == pytest.approx(0.05)
    assert board["models"] == 7


FIGURES = [wise_figures.leaderboard, wise_figures.worked_examples, metaqueries_figures.architecture, uniworld_figures.architecture]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("draw", FIGURES, ids=lambda f: f"{f.__module__.rsplit('.', 1)[-1]}.{f.__name__}")
def test_figures_render_in_both_languages(draw, lang):
    style.setup(lang)
    fig = draw(lang)
    try:
        fig.canvas.draw()
        assert fig.get_axes()
    finally:
        plt.close(fig)
