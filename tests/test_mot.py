"""The BAGEL-style mixture of Transformer experts: which token goes to which expert, that each expert's weights touch only its tokens
while the attention is shared, the parameter count against the dense model, causality, and a short run that draws better than chance."""

from __future__ import annotations

import pytest
import torch

from unimodel import runs
from unimodel.data import digits_splits
from unimodel.models.mot import MixtureOfTransformers, generation_tokens
from unimodel.models.unified import BOI, TOKEN_ID, Unified, UnifiedConfig, caption_ids, generation_sequence, prompt_ids, understanding_sequence
from unimodel.recipes import unified as unified_recipe
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig

N = 16  # codes per image
SMALL = {"dim": 32, "depth": 2, "heads": 2, "dropout": 0.0}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))


def _model(seed: int = 0, **config) -> MixtureOfTransformers:
    set_seed(seed)
    return MixtureOfTransformers(UnifiedConfig(**{**SMALL, **config})).eval()


def _codes(B: int) -> torch.Tensor:
    return torch.randint(32, (B, N), generator=torch.Generator().manual_seed(0))


def _generation(B: int = 2) -> torch.Tensor:
    return generation_sequence(prompt_ids(torch.arange(B) % 10, torch.arange(B) % 2), _codes(B))[0]


def _understanding(B: int = 2) -> torch.Tensor:
    y, langs = torch.arange(B) % 10, torch.arange(B) % 2
    return understanding_sequence(_codes(B), langs, caption_ids(y, langs))[0]


def _expert(model: MixtureOfTransformers, index: int) -> list[torch.nn.Parameter]:
    """Every block weight of one expert (0 understanding, 1 generation)."""
    return [p for block in model.blocks for part in (block.norm_attention, block.qkv, block.out, block.norm_mlp, block.mlp) for p in part[index].parameters()]


def test_only_the_codes_being_drawn_go_to_the_generation_expert():
    drawing, reading = generation_tokens(_generation()), generation_tokens(_understanding())
    assert drawing.shape == (2, N + 3) and reading.shape == (2, N + 7)
    assert drawing[:, 3:].all() and not drawing[:, :3].any()  # [BOS] prompt [BOI] are read, c1..c16 are drawn
    assert not reading.any()  # an image being read is the understanding expert's, with its caption
    assert _understanding()[0, 1] == TOKEN_ID[BOI]


def test_twice_the_block_weights_of_the_dense_model_as_many_as_one_twice_as_deep():
    count = lambda m: sum(p.numel() for name, p in m.named_parameters() if not name.startswith("tokenizer."))  # noqa: E731
    config = UnifiedConfig(**SMALL)
    mot, dense = MixtureOfTransformers(config), Unified(config)
    deep = Unified(UnifiedConfig(**{**SMALL, "depth": 4}))
    assert count(mot) == count(deep) > count(dense)
    per_block = sum(p.numel() for p in dense.blocks[0].parameters())
    assert count(mot) - count(dense) == config.depth * per_block


def test_a_sequence_that_only_reads_never_touches_the_generation_expert():
    model = _model()
    ids = _understanding()
    with torch.no_grad():
        before = model.logits(ids)
        for p in _expert(model, 1):
            p.add_(torch.randn_like(p))
        torch.testing.assert_close(model.logits(ids), before, atol=0, rtol=0)
        for p in _expert(model, 0):
            p.add_(torch.randn_like(p))
        assert not torch.allclose(model.logits(ids), before)


def test_the_generation_expert_changes_the_codes_positions_only_and_attention_is_shared():
    model = _model()
    ids = _generation(1)
    with torch.no_grad():
        before = model.logits(ids)
        for p in _expert(model, 1):
            p.add_(torch.randn_like(p))
        after = model.logits(ids)
    torch.testing.assert_close(after[:, :3], before[:, :3], atol=0, rtol=0)  # [BOS] prompt [BOI]: the reader's, and causal
    assert not torch.allclose(after[:, 3:], before[:, 3:])
    # the codes attend to the prompt, which the reading expert computes: changing only that expert moves the codes' logits too
    with torch.no_grad():
        for p in _expert(model, 0):
            p.add_(torch.randn_like(p))
        assert not torch.allclose(model.logits(ids)[:, 3:], after[:, 3:])


def test_a_drawing_batch_trains_both_experts_a_reading_batch_only_one():
    model = _model().train()
    reading = _understanding(3)
    model.log_likelihoods(reading, torch.ones_like(reading, dtype=torch.bool)).sum().backward()
    assert all(p.grad is None for p in _expert(model, 1)) and all(p.grad is not None for p in _expert(model, 0))
    model.zero_grad(set_to_none=True)
    drawing = _generation(3)
    model.log_likelihoods(drawing, torch.ones_like(drawing, dtype=torch.bool)).sum().backward()
    assert all(p.grad is not None for p in _expert(model, 0) + _expert(model, 1))


def test_a_later_token_never_changes_earlier_logits():
    model = _model()
    ids = _generation(1)
    changed = ids.clone()
    changed[0, -1] = (int(ids[0, -1]) + 1 - len(TOKEN_ID)) % 32 + len(TOKEN_ID)
    with torch.no_grad():
        torch.testing.assert_close(model.logits(changed)[:, :-1], model.logits(ids)[:, :-1])


def test_a_short_run_draws_the_prompted_digit_more_often_than_chance(tmp_path):
    # generation only, 10 tokenizer epochs, 25 epochs; about 9 s on one thread.
    # seeds 0..2 at guidance 3: judged right 0.45, 0.85, 0.90; chance is 0.1
    config = {"tokenizer_epochs": 10, "dim": 32, "depth": 1, "heads": 2, "dropout": 0.0, "tasks": "generation"}
    train = TrainConfig(epochs=25, lr=1e-3, optimizer="adamw", schedule="cosine", patience=0, device="cpu", seed=0)
    run = runs.train_run("mot", config, train, tmp_path / "run", progress=False, splits=digits_splits())
    assert unified_recipe.judged_generation(run.model, 10, 3.0)["accuracy"] > 0.3
