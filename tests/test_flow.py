"""The flow-matching model (``unimodel.models.flow``): its step is the loss of ``experiments.flow``, its sampler Euler's
method on its velocity, on the DDPM's network and time scale; a short run learns a mixture.

The path, the target and the sampler themselves are checked in ``test_unified_pages.py``, which the BAGEL
page's figures use too.
"""

from __future__ import annotations

import pytest
import torch

from unimodel.experiments.flow import euler_sample, flow_matching_loss, mixture_velocity, training_example
from unimodel.mixtures import MIXTURES, mode_metrics
from unimodel.models.diffusion import Denoiser
from unimodel.models.flow import TIME_SCALE, FlowConfig, FlowMatching
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit


@pytest.mark.parametrize("changes", [{"data_dim": 3}, {"sample_steps": 0}, {"time_dim": 7}, {"hidden": 0}])
def test_the_config_refuses_what_cannot_build(changes):
    with pytest.raises(ValueError):
        FlowConfig(**changes)


def test_the_network_is_the_ddpms_told_the_time_on_its_scale():
    model = FlowMatching(FlowConfig())
    assert type(model.net) is Denoiser
    x, t = torch.randn(5, 2), torch.rand(5)
    assert torch.equal(model.velocity(x, t), model.net(x, TIME_SCALE * t))


def test_a_training_step_is_the_flow_matching_loss_of_its_draws():
    model = FlowMatching(FlowConfig(data_dim=64))
    levels = torch.randint(0, 17, (8, 64))
    torch.manual_seed(3)
    loss, metrics = model((levels,))
    torch.manual_seed(3)
    x0 = levels.float() / 16 * 2 - 1  # pixel levels 0..16 to [-1, 1], as the DDPM scales them
    t, noise, x_t = training_example(x0)
    assert metrics == {} and torch.allclose(loss, flow_matching_loss(model.velocity(x_t, t), x0, noise))


def test_one_euler_step_subtracts_the_velocity_at_t_one():
    model = FlowMatching(FlowConfig(data_dim=64))
    noise = torch.randn((4, 64), generator=torch.Generator().manual_seed(0))
    drawn = model.sample(4, torch.Generator().manual_seed(0), steps=1)
    with torch.no_grad():
        expected = model.as_output(noise - model.velocity(noise, torch.ones(4)))
    assert torch.allclose(drawn, expected) and drawn.min() >= 0 and drawn.max() <= 1


def test_sampling_takes_the_configs_steps_unless_told_otherwise():
    model = FlowMatching(FlowConfig(sample_steps=3))
    passes = []
    model.net.register_forward_hook(lambda *_: passes.append(1))
    model.sample(2)
    assert len(passes) == 3
    model.sample(2, steps=5)
    assert len(passes) == 8
    with pytest.raises(ValueError, match="steps"):
        model.sample(2, steps=0)


@pytest.mark.parametrize("dataset", list(MIXTURES))
def test_one_step_of_the_exact_field_lands_every_sample_on_the_data_mean(dataset):
    """What the chapter measures: at t = 1 the noise says nothing of x_0, so v*(x, 1) = x - E[x_0]."""
    mixture = MIXTURES[dataset]
    field = lambda x, t: mixture_velocity(x, t, mixture.means.double(), mixture.std)  # noqa: E731
    landed = euler_sample(field, torch.randn((100, 2), dtype=torch.float64), 1)
    assert torch.allclose(landed, mixture.means.double().mean(0).expand(100, 2), atol=1e-9)


def test_a_short_run_learns_the_ring():
    """Four epochs on 20,000 points: the samples find all the ring's modes, which the untrained network's do not."""
    ring = MIXTURES["ring"]
    x, modes = ring.sample(20_000, torch.Generator().manual_seed(0))
    set_seed(0)
    model = FlowMatching(FlowConfig())
    before = mode_metrics(model.sample(1000, torch.Generator().manual_seed(1), steps=20), ring)
    fit(model, (x, modes), TrainConfig(epochs=4, batch_size=500, optimizer="adam", lr=2e-3, schedule="cosine", patience=0, seed=0), progress=False)
    after = mode_metrics(model.sample(1000, torch.Generator().manual_seed(1), steps=20), ring)
    assert after["modes"] == 8 and after["modes"] > before["modes"]
    assert after["jsd"] < before["jsd"] / 5
