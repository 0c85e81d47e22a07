"""The Transformer layers that several model families share.

Each family file keeps what is its own (a ViT's patches and head, BLIP's
three modes, the unified model's sequences); the layers they have in
common live here, so that editing one family's code retrains that family
only. Two kinds of attention, each written out by hand so that it can
return its weights:

``SelfAttention`` and ``Block``
    The encoder of the Vision Transformer (Dosovitskiy et al. 2020, arXiv
    2010.11929): every token attends to every token, then an MLP; CLIP's
    text encoder stacks the same block.
``Attention``
    Queries from one sequence, keys and values from another (or the same)
    under a mask: BLIP's bidirectional, causal and cross-attention
    (Li et al. 2022, arXiv 2201.12086), and the unified model's causal decoder.

Legend for shape comments: B batch, T query tokens, S key tokens, D the
width of a token, h heads, d = D / h the width of one head.
"""

from __future__ import annotations

import math

import torch
from torch import nn


# --8<-- [start:attention]
class SelfAttention(nn.Module):
    """Multi-head self-attention: every token takes a weighted mean of all tokens' values.

    Each head projects a token to a query q, a key k and a value v of width d.
    Token i's weight on token j is how well q_i matches k_j, softmaxed over j.
    The heads work side by side on their own slices of the token; their
    outputs are put back together and mixed by one more linear layer.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)  # queries, keys and values of all heads in one matrix product
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention's output, (B, T, D), and its weights, (B, h, T, T): row i is token i's weights over the tokens."""
        B, T, D = h.shape
        d = D // self.heads
        q, k, v = self.qkv(h).reshape(B, T, 3, self.heads, d).permute(2, 0, 3, 1, 4)  # each (B, h, T, d)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # QKᵀ / √d, (B, h, T, T)
        weights = scores.softmax(dim=-1)  # every row sums to 1, (B, h, T, T)
        mixed = weights @ v  # softmax(QKᵀ / √d)·V, (B, h, T, d)
        mixed = mixed.transpose(1, 2).reshape(B, T, D)  # the heads side by side again, (B, T, D)
        return self.dropout(self.out(mixed)), weights


# --8<-- [end:attention]


# --8<-- [start:block]
class Block(nn.Module):
    """A pre-norm Transformer encoder block: attention, then an MLP, each added to its input.

    "Pre-norm": each branch reads a LayerNorm of the tokens, while the sum
    (the residual stream) is never normalised, which keeps deep stacks easy
    to train. The attention mixes the tokens; the MLP works on each token
    alone.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim),
            nn.GELU(),
            nn.Linear(mlp_ratio * dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The tokens after the block, (B, T, D), and the block's attention weights, (B, h, T, T)."""
        mixed, weights = self.attention(self.norm1(h))
        h = h + mixed  # h ← h + MSA(LN(h))
        h = h + self.mlp(self.norm2(h))  # h ← h + MLP(LN(h))
        return h, weights


# --8<-- [end:block]


# --8<-- [start:masked-attention]
class Attention(nn.Module):
    """Multi-head attention of queries from ``h`` on keys and values from ``context`` (``h`` itself when None).

    ``mask`` (B or 1, T, S), True where query t may look at key s, hides the
    rest: their scores become -inf before the softmax, so their weights are
    exactly 0. A causal mask makes self-attention a decoder's; a context of
    image tokens makes it cross-attention.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The output, (B, T, D), and the weights, (B, h, T, S): row t is query t's weights over the S keys."""
        context = h if context is None else context
        (B, T, D), S = h.shape, context.shape[1]
        d = D // self.heads
        q = self.query(h).reshape(B, T, self.heads, d).transpose(1, 2)  # (B, h, T, d)
        k, v = self.key_value(context).reshape(B, S, 2, self.heads, d).permute(2, 0, 3, 1, 4)  # each (B, h, S, d)
        mixed, weights = attend(q, k, v, mask)
        return self.dropout(self.out(mixed)), weights


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(QKᵀ / √d)·V of each head's queries (B, h, T, d) on its keys and values (B, h, S, d), the heads put side by side, (B, T, h·d),
    and the weights (B, h, T, S); where ``mask`` (B or 1, T, S) is False, a weight is exactly 0."""
    B, heads, T, d = q.shape
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, h, T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None], float("-inf"))  # the same mask for every head
    weights = scores.softmax(dim=-1)
    return (weights @ v).transpose(1, 2).reshape(B, T, heads * d), weights


# --8<-- [end:masked-attention]
