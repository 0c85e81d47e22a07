"""The unified-model pages: flow matching (``unimodel.experiments.flow``), classifier-free guidance, and every figure of the pages."""

from __future__ import annotations

import pytest
import torch
from matplotlib import pyplot as plt

from unimodel.chapters import bagel, janus_pro
from unimodel.chapters import unified as survey
from unimodel.experiments import flow
from unimodel.figures import diagram, style
from unimodel.models import unified


def pair(shape=(5, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)


def test_interpolation_starts_at_the_data_and_ends_at_the_noise():
    x0, noise = pair()
    torch.testing.assert_close(flow.interpolate(x0, noise, 0.0), x0)
    torch.testing.assert_close(flow.interpolate(x0, noise, 1.0), noise)
    torch.testing.assert_close(flow.interpolate(x0, noise, 0.25), 0.75 * x0 + 0.25 * noise)


def test_interpolation_takes_one_time_per_example_of_any_shape():
    x0, noise = pair((4, 1, 8, 8))
    t = torch.tensor([0.0, 0.5, 1.0, 0.1], dtype=torch.float64)
    xt = flow.interpolate(x0, noise, t)
    assert xt.shape == x0.shape
    torch.testing.assert_close(xt[0], x0[0])
    torch.testing.assert_close(xt[2], noise[2])
    torch.testing.assert_close(xt[1], (x0[1] + noise[1]) / 2)


def test_the_target_is_the_derivative_of_the_path():
    x0, noise = pair()
    h = 1e-6
    derivative = (flow.interpolate(x0, noise, 0.3 + h) - flow.interpolate(x0, noise, 0.3 - h)) / (2 * h)
    torch.testing.assert_close(derivative, flow.velocity_target(x0, noise), atol=1e-8, rtol=0)


def test_the_loss_is_zero_for_the_exact_target_and_the_mean_squared_error_otherwise():
    x0, noise = pair()
    exact = flow.velocity_target(x0, noise)
    assert flow.flow_matching_loss(exact, x0, noise).item() == 0.0
    off = exact + 0.5
    assert flow.flow_matching_loss(off, x0, noise).item() == pytest.approx(0.25)
    assert flow.flow_matching_loss(torch.zeros_like(x0), x0, noise).item() == pytest.approx(((noise - x0) ** 2).mean().item())


def test_euler_with_the_constant_velocity_of_a_pair_recovers_the_data_exactly():
    x0, noise = pair((16, 2))
    for steps in (1, 3, 50):
        out = flow.euler_sample(lambda x, t: flow.velocity_target(x0, noise), noise, steps)
        torch.testing.assert_close(out, x0, atol=1e-12, rtol=0)


def test_euler_trajectory_runs_from_the_noise_through_the_interpolation():
    x0, noise = pair((6, 2))
    path = flow.euler_sample(lambda x, t: flow.velocity_target(x0, noise), noise, 4, trajectory=True)
    assert path.shape == (5, 6, 2)
    for k, t in enumerate((1.0, 0.75, 0.5, 0.25, 0.0)):
        torch.testing.assert_close(path[k], flow.interpolate(x0, noise, t), atol=1e-12, rtol=0)
    with pytest.raises(ValueError):
        flow.euler_sample(lambda x, t: x, noise, 0)


def test_the_velocity_function_gets_one_time_per_example():
    seen = []
    noise = torch.zeros(3, 2)
    flow.euler_sample(lambda x, t: seen.append(t.clone()) or torch.zeros_like(x), noise, 2)
    assert [s.tolist() for s in seen] == [[1.0] * 3, [0.5] * 3]


def test_the_exact_field_of_a_gaussian_carries_noise_onto_it():
    """For x0 ~ N(m, s^2) the flow is the linear map eps -> m + s eps; Euler converges to it at first order."""
    mean, std = torch.tensor([[1.5, -0.5]], dtype=torch.float64), 0.3
    noise, _ = pair((500, 2), seed=1)
    exact = mean + std * noise

    def error(steps: int) -> float:
        out = flow.euler_sample(lambda x, t: flow.mixture_velocity(x, t, mean, std), noise, steps)
        return (out - exact).abs().max().item()

    coarse, fine = error(100), error(1000)
    assert fine < 5e-3
    assert coarse / fine == pytest.approx(10, rel=0.3)  # first order: ten times the steps, a tenth of the error


def test_the_exact_field_is_the_best_velocity_in_mean_square():
    """E[eps - x0 | x_t] minimises the flow-matching loss: scaling or shifting it raises the loss."""
    ring = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    n = 200_000
    x0 = ring[torch.randint(3, (n,), generator=g)] + 0.2 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    t, noise, xt = flow.training_example(x0, generator=g)
    best = flow.mixture_velocity(xt, t, ring, 0.2)
    loss = flow.flow_matching_loss(best, x0, noise).item()
    for worse in (1.1 * best, 0.9 * best, best + 0.05):
        assert flow.flow_matching_loss(worse, x0, noise).item() > loss


def test_training_examples_are_reproducible_and_in_range():
    x0 = torch.ones(64, 2)
    a = flow.training_example(x0, generator=torch.Generator().manual_seed(3))
    b = flow.training_example(x0, generator=torch.Generator().manual_seed(3))
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)
    t, noise, xt = a
    assert t.shape == (64,) and bool(((t >= 0) & (t <= 1)).all())
    torch.testing.assert_close(xt, flow.interpolate(x0, noise, t))


def test_guidance_interpolates_and_extrapolates_the_logits():
    cond, uncond = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.5, 0.5, 0.0])
    torch.testing.assert_close(unified.guided_logits(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(unified.guided_logits(cond, uncond, 1.0), cond)
    torch.testing.assert_close(unified.guided_logits(cond, uncond, 3.0), torch.tensor([5.0, -1.0, -3.0]))
    # a larger scale puts more probability on the token the condition raises most
    p = [torch.softmax(unified.guided_logits(cond, uncond, s), 0)[0].item() for s in (1.0, 3.0, 5.0)]
    assert p[0] < p[1] < p[2]


FIGURES = [survey.taxonomy, survey.timeline, bagel.architecture, bagel.flow_paths, janus_pro.architecture, janus_pro.cfg]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("draw", FIGURES, ids=lambda f: f"{f.__module__.rsplit('.', 1)[-1]}.{f.__name__}")
def test_every_figure_of_the_pages_draws(draw, lang):
    style.setup(lang)
    fig = draw(lang)
    try:
        assert fig.axes
    finally:
        plt.close(fig)


def test_the_taxonomy_places_every_model_in_a_known_cell():
    assert len({name for name, *_ in survey.MODELS}) == len(survey.MODELS)
    for _, arxiv, backbone, encoding in survey.MODELS:
        assert backbone in survey.BACKBONES and encoding in survey.ENCODINGS
        assert len(arxiv.split(".")[0]) == 4


def test_a_diagram_rejects_arrows_to_missing_boxes_and_duplicate_keys():
    boxes = [diagram.Box("a", "A", 1, 1), diagram.Box("b", "B", 4, 1)]
    with pytest.raises(ValueError, match="do not exist"):
        diagram.draw(boxes, [diagram.Arrow("a", "c")], width=6, height=2)
    with pytest.raises(ValueError, match="share a key"):
        diagram.draw([*boxes, diagram.Box("a", "again", 2, 2)], [], width=6, height=2)
    fig = diagram.draw(boxes, [diagram.Arrow("a", "b", label="x")], width=6, height=2)
    plt.close(fig)
