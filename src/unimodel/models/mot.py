"""A BAGEL-style unified model: a mixture of Transformer experts, one for reading and one for drawing, with attention shared.

BAGEL (arXiv 2505.14683) is a Mixture-of-Transformers (MoT; Liang et al. 2024, arXiv 2411.04996):
every block holds two copies of its weights, one for the understanding tokens and one for the
generation tokens. A token goes through its own expert's LayerNorms, query, key and value
projections, output projection and MLP, but the attention itself runs over all the tokens of
the sequence together, so each expert reads what the other wrote. Each token still passes
through one block's worth of weights: the model has twice the block parameters of the dense
one at the same compute per token.

Here the generation expert takes the image codes of a generation sequence (the image being
drawn), and the understanding expert takes everything else: the text, the prompt and the codes
of an image being read. The embeddings, the position embeddings, the final LayerNorm and the
output layer stay shared. Sequences, tokenizer, loss, guidance, captioning and the recipe are
the unified model's (``unimodel.models.unified``).

Legend for shape comments: B batch, T tokens of a sequence, D the width of a token, h heads,
d = D / h, E experts (2).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from unimodel.models.layers import attend
from unimodel.models.unified import BOI, TOKEN_ID, Unified, UnifiedConfig

EXPERTS = ("understanding", "generation")


# --8<-- [start:routing]
def generation_tokens(ids: torch.Tensor) -> torch.Tensor:
    """(B, T) bool, True on the tokens the generation expert takes: the image codes after [BOS] prompt [BOI] in a generation sequence.

    A generation sequence has its prompt at position 1; an understanding one has [BOI] there.
    """
    drawing = ids[:, 1] != TOKEN_ID[BOI]  # (B,)
    position = torch.arange(ids.shape[1], device=ids.device)
    return drawing[:, None] & (position >= 3)[None]


def routed(experts: nn.ModuleList, h: torch.Tensor, generation: torch.Tensor) -> torch.Tensor:
    """Each token (B, T, ·) through its own expert: ``experts[1]`` where ``generation`` (B, T) is True, ``experts[0]`` elsewhere."""
    out = None
    for expert, chosen in zip(experts, (~generation, generation), strict=True):
        if chosen.any():
            y = expert(h[chosen])  # (tokens of this expert, ·)
            if out is None:
                out = h.new_zeros(*h.shape[:2], y.shape[-1])
            out[chosen] = y
    return out


def per_expert(build: Callable[[], nn.Module]) -> nn.ModuleList:
    """One copy of a layer for each expert, each with weights of its own."""
    return nn.ModuleList(build() for _ in EXPERTS)


# --8<-- [end:routing]


# --8<-- [start:expert-block]
class ExpertBlock(nn.Module):
    """A decoder block with a copy of its weights per expert; the attention over all tokens is shared."""

    def __init__(self, c: UnifiedConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.norm_attention = per_expert(lambda: nn.LayerNorm(c.dim))
        self.qkv = per_expert(lambda: nn.Linear(c.dim, 3 * c.dim))  # queries, keys and values in one matrix product
        self.out = per_expert(lambda: nn.Linear(c.dim, c.dim))
        self.norm_mlp = per_expert(lambda: nn.LayerNorm(c.dim))
        self.mlp = per_expert(
            lambda: nn.Sequential(nn.Linear(c.dim, c.mlp_ratio * c.dim), nn.GELU(), nn.Linear(c.mlp_ratio * c.dim, c.dim), nn.Dropout(c.dropout))
        )
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor, generation: torch.Tensor) -> torch.Tensor:
        B, T, D = h.shape
        qkv = routed(self.qkv, routed(self.norm_attention, h, generation), generation)  # (B, T, 3D), each token by its expert
        q, k, v = qkv.reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # each (B, h, T, d)
        mixed, _ = attend(q, k, v, mask)  # one attention over every token, whichever its expert
        h = h + self.dropout(routed(self.out, mixed, generation))
        return h + routed(self.mlp, routed(self.norm_mlp, h, generation), generation)


# --8<-- [end:expert-block]


class MixtureOfTransformers(Unified):
    """The unified model with every block split into an understanding expert and a generation expert (BAGEL's MoT)."""

    def __init__(self, config: UnifiedConfig) -> None:
        super().__init__(config)
        self.blocks = nn.ModuleList(ExpertBlock(config) for _ in range(config.depth))

    def transform(self, h: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        mask, generation = self.attention_mask(ids), generation_tokens(ids)
        for block in self.blocks:
            h = block(h, mask, generation)
        return h
