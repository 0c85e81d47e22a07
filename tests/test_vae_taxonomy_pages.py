"""The VAE and taxonomy pages: the notes' text kept verbatim and in order, density / coverage, the VAE's pixel samples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import twins

from unimodel.chapters import taxonomy as figures
from unimodel.models.vae import VAE, VAEConfig

ROOT = Path(__file__).resolve().parents[1]
SEED_NOTES = twins.NOTES


def seed_lines(heading: str, until: str | None) -> list[str]:
    """The non-empty, non-heading lines of one part of the learner's notes, stripped."""
    text = SEED_NOTES.read_text(encoding="utf-8")
    part = text[text.index(heading) + len(heading) : text.index(until) if until else None]
    return [line.strip() for line in part.splitlines() if line.strip() and not line.startswith("#")]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.skipif(SEED_NOTES is None, reason="the learner's notes are not on this machine")
@pytest.mark.parametrize(
    "page, heading, until",
    [
        ("vae.md", "# VAE变分自编码器", None),
        ("taxonomy.md", "## 生成模型分类\n", "# VAE变分自编码器"),
    ],
)
def test_the_notes_stand_verbatim_and_in_order(page, heading, until):
    text = squeeze((ROOT / "docs" / page).read_text(encoding="utf-8"))
    at = 0
    for line in seed_lines(heading, until):
        found = text.find(squeeze(line), at)
        assert found >= 0, f"{page}: the notes' line is missing or out of order: {line}"
        at = found + len(squeeze(line))


def test_both_taxonomy_pages_give_the_same_bench_time():
    times = [
        re.search(r"unimodel bench taxonomy +#[^\n]*?(\d+) ?(?:分钟|minutes)", (ROOT / "docs" / name).read_text(encoding="utf-8")).group(1)
        for name in ("taxonomy.md", "en/taxonomy.md")
    ]
    assert times[0] == times[1] == "5"


def test_density_of_a_set_against_itself_is_k_plus_one_over_k_and_its_coverage_is_one():
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    scores = figures.density_coverage(x, x, k=5)
    assert scores["coverage"] == 1.0
    # each real ball holds its centre and its 5 neighbours (up to rounding at the rim: cdist is not exactly symmetric)
    assert scores["density"] == pytest.approx(6 / 5, abs=0.01)


def test_an_outlying_sample_inflates_recall_but_not_coverage():
    """Naeem et al. 2020: a far fake sample has a huge k-NN ball among the fakes and covers every real one."""
    from unimodel import metrics

    g = torch.Generator().manual_seed(0)
    real = torch.randn(100, 2, generator=g)
    fake = torch.cat([torch.randn(3, 2, generator=g) * 0.01 + 5.0, torch.tensor([[40.0, 40.0]])])  # a far cluster and one farther outlier
    assert metrics.knn_precision_recall(real, fake, k=3)["recall"] == 1.0
    assert figures.density_coverage(real, fake, k=3) == {"density": 0.0, "coverage": 0.0}


def test_density_coverage_needs_more_real_samples_than_k():
    with pytest.raises(ValueError):
        figures.density_coverage(torch.zeros(3, 2), torch.zeros(3, 2), k=5)


def test_vae_pixel_samples_use_the_prior_draws_of_sample_and_follow_p_x_given_z():
    torch.manual_seed(0)
    model = VAE(VAEConfig()).eval()
    pixels = figures.vae_pixel_samples(model, 4000, torch.Generator().manual_seed(3))
    assert pixels.shape == (4000, 64)
    levels = pixels * 16
    torch.testing.assert_close(levels, levels.round())  # integer levels 0..16, scaled to [0, 1]
    assert levels.min() >= 0 and levels.max() <= 16
    # the same z as model.sample: the pixel means follow the decoder's means
    means = model.sample(4000, torch.Generator().manual_seed(3))
    assert (pixels.mean(0) - means.mean(0)).abs().max() < 0.03
