"""The GAN: PacGAN's mode metrics on hand-made point sets, the losses and their gradients, packing, the game in the loop."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from unimodel.data import load_splits
from unimodel.experiments.gan2d import summarize
from unimodel.mixtures import HQ_STDS, MIXTURES, jensen_shannon, mode_metrics
from unimodel.models.gan import GAN, GANConfig, discriminator_loss, generator_loss
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

RING, GRID = MIXTURES["ring"], MIXTURES["grid"]


# ------------------------------------------------------------------ the mixtures and the metric


def test_the_mixtures_are_pacgans():
    assert len(RING.means) == 8 and RING.std == 0.01
    assert torch.allclose(RING.means.norm(dim=1), torch.ones(8), atol=1e-6)  # on the unit circle
    assert torch.allclose(RING.means[2], torch.tensor([0.0, 1.0]), atol=1e-6)  # angle 2*pi*2/8
    assert len(GRID.means) == 25 and GRID.std == 0.05
    assert set(GRID.means.flatten().tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    x, modes = RING.sample(20_000, torch.Generator().manual_seed(0))
    offsets = x - RING.means[modes]
    assert offsets.std().item() == pytest.approx(0.01, rel=0.03)
    assert torch.bincount(modes, minlength=8).min() > 2200  # equal weights


@pytest.mark.parametrize("mixture", [RING, GRID], ids=["ring", "grid"])
def test_points_on_every_mode_score_perfectly(mixture):
    points = mixture.means.repeat(10, 1)
    scores = mode_metrics(points, mixture)
    assert scores["modes"] == len(mixture.means)
    assert scores["high_quality"] == 1.0
    assert scores["jsd"] == pytest.approx(0.0, abs=1e-12)
    assert scores["counts"] == [10] * len(mixture.means)


def test_real_samples_are_almost_all_high_quality():
    x, _ = GRID.sample(2500, torch.Generator().manual_seed(1))
    scores = mode_metrics(x, GRID)
    assert scores["modes"] == 25
    assert scores["high_quality"] == pytest.approx(1 - math.exp(-(HQ_STDS**2) / 2), abs=0.01)  # 2-D Gaussian within 3 std: 98.9%


def test_one_mode_is_one_mode_captured():
    points = RING.means[3].repeat(100, 1) + 0.005
    scores = mode_metrics(points, RING)
    assert scores["modes"] == 1 and scores["high_quality"] == 1.0
    p = torch.zeros(8, dtype=torch.float64)
    p[3] = 1.0
    # m = (p + q)/2 is 9/16 on mode 3 and 1/16 elsewhere
    expected = 0.5 * math.log(16 / 9) + 0.5 * ((1 / 8) * math.log(2 / 9) + (7 / 8) * math.log(2))
    assert scores["jsd"] == pytest.approx(expected, rel=1e-9)
    assert scores["jsd"] == pytest.approx(jensen_shannon(p, torch.full((8,), 1 / 8, dtype=torch.float64)))


def test_points_off_every_mode_capture_nothing():
    between = torch.tensor([[math.cos(a), math.sin(a)] for a in (math.pi / 8 + k * math.pi / 4 for k in range(8))])  # halfway between ring modes
    scores = mode_metrics(between, RING)
    assert scores["modes"] == 0 and scores["high_quality"] == 0.0
    assert scores["jsd"] == pytest.approx(math.log(2))  # no high-quality point: as far from uniform as it gets
    off_grid = GRID.means + torch.tensor([1.0, 1.0])
    assert mode_metrics(off_grid, GRID)["modes"] == 0


def test_high_quality_means_within_three_standard_deviations():
    inside = RING.means[0] + torch.tensor([2.9 * RING.std, 0.0])
    outside = RING.means[0] + torch.tensor([0.0, 3.1 * RING.std])
    scores = mode_metrics(torch.stack([inside, outside]), RING)
    assert scores["high_quality"] == 0.5 and scores["counts"][0] == 1


def test_jensen_shannon_is_bounded_by_log_2():
    p, q = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert jensen_shannon(p, q) == pytest.approx(math.log(2))
    assert jensen_shannon(p, p) == 0.0


def test_summary_has_standard_errors():
    rows = [{"dataset": "ring", "modes": m, "high_quality": 0.9, "jsd": 0.0, "seconds": 1.0} for m in (8, 7, 8, 8)]
    summary = summarize(rows)
    assert summary["modes"]["mean"] == 7.75
    assert summary["modes"]["stderr"] == pytest.approx(0.5 / 2)  # std 0.5 over sqrt(4)
    assert summary["all_modes_every_seed"] is False
    assert summarize(rows[:1])["modes"]["stderr"] == 0.0


def test_the_ring_data_splits():
    splits = load_splits("ring")
    assert splits.train.x.shape == (100_000, 2) and splits.test.x.shape == (2500, 2)
    assert splits.mixture is RING
    assert torch.equal(load_splits("ring").train.x, splits.train.x)  # drawn with a fixed seed


# ------------------------------------------------------------------ the losses


def test_discriminator_loss_at_chance_is_two_log_two():
    zeros = torch.zeros(5)
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    confident = discriminator_loss(torch.full((5,), 20.0), torch.full((5,), -20.0)).item()
    assert confident < 1e-8


def _logit_gradient(kind: str, logit: float) -> float:
    score = torch.tensor([logit], requires_grad=True)
    generator_loss(score, kind).backward()
    return score.grad.item()


@pytest.mark.parametrize("logit", [-8.0, -2.0, 0.0, 3.0])
def test_generator_loss_gradients(logit):
    d = torch.sigmoid(torch.tensor(logit)).item()  # D(G(z))
    assert _logit_gradient("minimax", logit) == pytest.approx(-d, rel=1e-5)  # d/dl log(1 - sigmoid(l))
    assert _logit_gradient("non-saturating", logit) == pytest.approx(-(1 - d), rel=1e-5)  # d/dl -log sigmoid(l)


def test_minimax_saturates_where_the_discriminator_wins():
    # D(G(z)) = 0.0003: the minimax gradient is thousands of times smaller than the non-saturating one
    assert abs(_logit_gradient("minimax", -8.0)) < 1e-3
    assert abs(_logit_gradient("non-saturating", -8.0)) > 0.99
    # both losses push the logit up, so G moves its samples toward where D says "real"
    assert _logit_gradient("minimax", 0.0) < 0 and _logit_gradient("non-saturating", 0.0) < 0


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="loss"):
        GANConfig(loss="hinge")
    with pytest.raises(ValueError, match="data_dim"):
        GANConfig(data_dim=3)
    with pytest.raises(ValueError, match="positive"):
        GANConfig(pack=0)


# ------------------------------------------------------------------ the model


def test_packing_concatenates_samples_for_the_discriminator():
    set_seed(0)
    model = GAN(GANConfig(pack=4)).eval()
    samples = torch.randn(10, 2)
    logits = model.judge(samples)
    assert logits.shape == (2,)  # 10 samples make 2 whole packs of 4; the rest is left out
    first_pack = samples[:4].reshape(1, 8)
    assert torch.allclose(logits[0], model.discriminator(first_pack).squeeze())


def test_r1_penalty_is_the_squared_gradient_norm_of_the_logit_on_real_data():
    set_seed(0)
    model = GAN(GANConfig(r1=2.0))
    real = torch.randn(50, 2)
    twin = _without_r1(model)
    torch.manual_seed(1)
    with_penalty, metrics = model((real.clone(),), "discriminator")
    torch.manual_seed(1)  # the same generated batch
    without, _ = twin((real.clone(),), "discriminator")
    # central differences of the logit along each coordinate, point by point, in double precision
    eps, exact = 1e-5, copy.deepcopy(model).double()
    with torch.no_grad():
        grads = torch.stack(
            [(exact.judge(real.double() + eps * e) - exact.judge(real.double() - eps * e)) / (2 * eps) for e in torch.eye(2, dtype=torch.float64)], dim=1
        )
    assert metrics["r1"] == pytest.approx(grads.pow(2).sum(1).mean().item(), rel=1e-4)
    assert (with_penalty - without).item() == pytest.approx(2.0 / 2 * metrics["r1"], rel=1e-3)  # a difference of two float32 losses near 1.4


def _without_r1(model: GAN) -> GAN:
    twin = GAN(GANConfig(**{**asdict(model.config), "r1": 0.0}))
    twin.load_state_dict(model.state_dict())
    return twin


@pytest.mark.parametrize("data_dim", [2, 64])
def test_samples_have_the_shape_of_the_data(data_dim):
    set_seed(0)
    model = GAN(GANConfig(data_dim=data_dim))
    x = model.sample(7, torch.Generator().manual_seed(0))
    assert x.shape == (7, data_dim)
    assert model.training  # sampling leaves the mode as it found it
    if data_dim == 64:
        assert x.min() >= 0 and x.max() <= 1
    again = model.sample(7, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)


def _ring_data(n: int) -> tuple[torch.Tensor, ...]:
    x, modes = RING.sample(n, torch.Generator().manual_seed(0))
    return (x, modes)


def test_each_player_moves_only_its_own_weights():
    set_seed(0)
    model = GAN(GANConfig(hidden=32, d_hidden=32))
    generator = {k: v.clone() for k, v in model.generator.state_dict().items()}
    discriminator = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    config = TrainConfig(epochs=1, batch_size=100, optimizer="adam", lr=1e-3, patience=0, turns="epoch", device="cpu")
    fit(model, _ring_data(300), config, progress=False)  # epoch 1 is the discriminator's turn
    assert all(torch.equal(generator[k], v) for k, v in model.generator.state_dict().items() if "running" not in k and "batches" not in k)
    assert not all(torch.equal(discriminator[k], v) for k, v in model.discriminator.state_dict().items())


def test_the_generators_turn_lowers_its_loss_against_the_same_discriminator():
    set_seed(0)
    model = GAN(GANConfig(hidden=32, d_hidden=32))
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))
    losses = []

    def generator_loss_now(epoch, record, m):
        with torch.no_grad():
            losses.append(generator_loss(m.discriminator(m.generator(z)).squeeze(1)).item())

    config = TrainConfig(epochs=2, batch_size=100, optimizer="adam", lr=1e-3, beta1=0.5, patience=0, turns="epoch", device="cpu")
    fit(model.train(), _ring_data(5000), config, progress=False, callbacks=[generator_loss_now])  # epoch 1: D alone, epoch 2: G alone
    assert losses[1] < losses[0] - 0.1


def test_a_short_run_finds_the_ring():
    set_seed(0)
    model = GAN(GANConfig(hidden=64, d_hidden=64))
    before = mode_metrics(model.sample(2500, torch.Generator().manual_seed(1)), RING)
    config = TrainConfig(epochs=3, batch_size=100, optimizer="adam", lr=1e-3, beta1=0.5, patience=0, device="cpu")
    result = fit(model, _ring_data(20_000), config, progress=False)
    after = mode_metrics(model.sample(2500, torch.Generator().manual_seed(1)), RING)
    assert before["high_quality"] < 0.01
    assert after["modes"] >= 4 and after["high_quality"] > 0.05  # 8 and 0.33 on 2 threads, 6 and 0.08 on 1 (GAN training is chaotic)
    assert {"d_real", "d_fake", "discriminator_loss", "generator_loss"} <= set(result.history[-1])


# ------------------------------------------------------------------ rejection sampling


class _LogRatio(torch.nn.Module):
    """A stand-in ratio network with a known logit: log N(x; 0, s^2 I) - log N(x; 0, I) in the plane."""

    def __init__(self, s: float):
        super().__init__()
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squared = x.pow(2).sum(1, keepdim=True)
        return -squared / (2 * self.s**2) + squared / 2 - 2 * math.log(self.s)


def _standard_normal_gan() -> GAN:
    """A GAN with rejection sampling whose generator passes its N(0, I) noise through unchanged."""
    model = GAN(GANConfig(rejection=True)).eval()
    model.generator = torch.nn.Identity()
    model.ratio = _LogRatio(0.5)
    return model


def test_rejection_follows_the_data_where_the_ratio_is_below_its_median():
    # G draws N(0, I), the data are N(0, 0.25 I): |x|^2 is exponential with mean 2 under G, 0.5 under the data.
    # The ratio falls with |x|^2, so its median sits at G's median of |x|^2, 2 log 2. Draws beyond it are
    # thinned to the data's density: there, |x|^2 - 2 log 2 is exponential with the data's mean, 0.5 (G's: 2).
    model = _standard_normal_gan()
    direct = model.sample(20_000, torch.Generator().manual_seed(0), rejection=False).pow(2).sum(1)
    kept = model.sample(20_000, torch.Generator().manual_seed(0)).pow(2).sum(1)
    median = 2 * math.log(2)
    assert (direct[direct > median] - median).mean() == pytest.approx(2.0, rel=0.05)
    assert (kept[kept > median] - median).mean() == pytest.approx(0.5, rel=0.05)
    assert (kept > median).double().mean() == pytest.approx(0.125 / 0.625, abs=0.02)  # half of G's mass kept whole, a quarter of the rest


def test_draws_rated_above_the_median_are_always_kept():
    model = _standard_normal_gan()
    candidates = torch.randn(2001, 2, generator=torch.Generator().manual_seed(1))
    keep = model.accepted(candidates, torch.Generator().manual_seed(2))
    above = model.ratio(candidates).squeeze(1) >= model.ratio(candidates).median()
    assert keep[above].all()
    assert 0.5 < keep.double().mean() < 0.9  # and only some of the rest


def test_the_ratio_network_trains_without_touching_the_game():
    set_seed(0)
    model = GAN(GANConfig(hidden=16, d_hidden=16, rejection=True, r1=0.1))
    assert model.players == ("discriminator", "generator", "ratio")
    loss, _ = model((RING.sample(64, torch.Generator().manual_seed(0))[0],), "ratio")
    loss.backward()
    assert all(p.grad is None for p in model.generator.parameters())  # G never learns from it
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.ratio.parameters())
    assert model.ratio[0].in_features == 2  # one point at a time, whatever the pack


def test_rejection_needs_a_ratio_network():
    model = GAN(GANConfig())
    assert model.players == ("discriminator", "generator")
    with pytest.raises(ValueError, match="rejection=True"):
        model.sample(10, rejection=True)


def test_a_ratio_network_without_numbers_is_an_error_not_a_hang():
    model = _standard_normal_gan()
    model.ratio = _LogRatio(float("nan"))  # logits that are not numbers, as after a diverged run
    with pytest.raises(RuntimeError, match="finite"):
        model.sample(10, torch.Generator().manual_seed(0))


def test_a_rejection_run_is_scored_with_and_without_rejection(tmp_path):
    from unimodel.experiments import gan2d
    from unimodel.runs import train_run

    config = gan2d.model_config("r1", "ring", hidden=16, d_hidden=16)
    run = train_run("gan", config, gan2d.train_config("ring", 0, epochs=1), tmp_path, data="ring", progress=False)
    row = gan2d.score(run, seed=0)
    assert {"modes", "high_quality", "direct_modes", "direct_high_quality", "direct_jsd"} <= set(row)
    summary = summarize([{"dataset": "ring", **row}, {"dataset": "ring", **row}])
    assert summary["direct_high_quality"]["mean"] == row["direct_high_quality"]


def test_a_batch_smaller_than_a_pack_is_an_error():
    model = GAN(GANConfig(pack=4))
    with pytest.raises(ValueError, match="pack"):
        model((torch.zeros(3, 2),), "discriminator")


def test_config_round_trips():
    config = GANConfig(data_dim=64, pack=2)
    assert config.noise_dim == 32
    assert GANConfig(**asdict(config)) == config


# ------------------------------------------------------------------ the command line


def _cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    from unimodel.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_trains_samples_and_scores_a_gan_on_the_ring(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    code, stdout, _ = _cli(capsys, ["train", "gan", "--dataset", "ring", "--epochs", "1", "--hidden", "16", "--d-hidden", "16", "--out", out])
    assert code == 0
    assert json.loads(stdout)["best_val"] is None  # no validation score: a GAN keeps its last weights
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["meta"]["data"] == "ring" and saved["train_config"]["batch_size"] == 500  # the GAN's own defaults
    code, stdout, _ = _cli(capsys, ["sample", out, "--n", "2500", "--out", tmp_path / "points.npy"])
    assert code == 0 and np.load(tmp_path / "points.npy").shape == (2500, 2)
    code, _, _ = _cli(capsys, ["sample", out, "--n", "300", "--out", tmp_path / "points.png"])
    assert code == 0 and (tmp_path / "points.png").read_bytes()[:4] == b"\x89PNG"
    code, stdout, _ = _cli(capsys, ["eval", out])
    scores = json.loads(stdout)
    assert code == 0 and scores["samples"] == 2500 and 0 <= scores["modes"] <= 8 and len(scores["counts"]) == 8


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "gan", "--dataset", "moon"], "no train-images"),  # neither a known data set nor a folder of IDX files
        (["train", "gan", "--pack", "0"], "positive"),
        (["train", "gan", "--loss", "hinge"], "loss"),
        (["train", "gan", "--turns", "sometimes"], "turns"),
        (["bench", "gan2d", "--dataset", "moon"], "invalid choice"),
        (["bench", "gan2d", "--seeds"], "expected at least one"),
        (["bench", "gan2d", "--variant", "wgan"], "invalid choice"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    code, _, err = _cli(capsys, [*argv, *(["--out", tmp_path / "run"] if argv[0] == "train" else [])])
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_variants_differ_only_where_they_say():
    from unimodel.experiments import gan2d

    plain, r1, pacgan = (gan2d.model_config(v, "grid") for v in ("gan", "r1", "pacgan"))
    assert r1 == {**plain, "r1": gan2d.R1_WEIGHT["grid"], "rejection": True}
    assert pacgan == {**plain, "pack": 4}
    assert gan2d.model_config("r1", "ring")["r1"] == gan2d.R1_WEIGHT["ring"]


def test_bench_gan2d_prints_one_line_per_seed_then_the_summary(capsys, monkeypatch):
    from unimodel.experiments import gan2d

    short = gan2d.train_config
    monkeypatch.setattr(gan2d, "train_config", lambda dataset, seed: short(dataset, seed, epochs=1))
    code, stdout, err = _cli(capsys, ["bench", "gan2d", "--dataset", "ring", "--variant", "gan", "--seeds", "3", "4"])
    assert code == 0
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [line.get("seed") for line in lines[:2]] == [3, 4]
    assert all(set(line) >= {"modes", "high_quality", "jsd", "seconds"} for line in lines[:2])
    summary = lines[2]["summary"]
    assert summary["seeds"] == 2 and summary["modes"]["mean"] == (lines[0]["modes"] + lines[1]["modes"]) / 2
    assert "ring gan:" in err and "per seed" in err
