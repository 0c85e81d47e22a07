"""A Show-o-style unified model: it writes text token by token and draws an image by unmasking its codes.

Show-o (arXiv 2408.12528) keeps Chameleon's one Transformer and one vocabulary but changes how
an image is written. Text is still next-token prediction (NTP). An image's codes are hidden
behind a [MASK] token at a random ratio, and the model guesses every hidden code at once from
all it sees (mask token prediction, MTP), the masked image modelling of MaskGIT (Chang et al.
2022, arXiv 2202.04200). Two things change from ``unimodel.models.unified``:

- the attention: causal over the text, full within an image ("omni-attention"), since no code
  of an image is the answer to another code's position any more;
- the drawing: it starts from N [MASK] tokens and fills them in K passes (MaskGIT's parallel
  decoding), each pass keeping its surest guesses and hiding the rest again.

The tokenizer, the sequences, captioning, guidance and the recipe are the unified model's.
[MASK] is the id after the last image code, so a hidden code is "code K" to the sequences.
One thing is lost: the chance of an image's codes is no longer a product of next-code
probabilities, so this model cannot rank captions by drawing (``exact_likelihood``).

Legend for shape comments: B batch, N image codes per image (16), T tokens of a sequence,
K codebook entries, V the vocabulary (text tokens, the K codes, [MASK]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from unimodel.models.unified import TEXT_VOCAB, Unified, UnifiedConfig, generation_sequence, guidance_prefix, guided_logits, omni_attention_mask


@dataclass
class MaskedConfig(UnifiedConfig):
    sample_steps: int = 8  # K, passes of the Transformer that draw an image, 1 to N (16): each reveals at least one code
    choice_temperature: float = 1.0  # Gumbel noise on the confidence that picks which guesses a pass keeps, annealed to 0 by the last pass (Show-o's code)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_steps(self.sample_steps, self.grid**2)
        if self.choice_temperature < 0:
            raise ValueError(f"choice_temperature must be >= 0, got {self.choice_temperature}")

    @property
    def vocab(self) -> int:
        return len(TEXT_VOCAB) + self.codebook_size + 1  # the text, the K codes, [MASK]


def check_steps(steps: int, codes: int) -> None:
    if not 1 <= steps <= codes:
        raise ValueError(f"sample steps must be between 1 and {codes} (the codes of an image: each step reveals at least one), got {steps}")


# --8<-- [start:schedule]
def hidden_after(step: int, steps: int, codes: int) -> int:
    """How many of an image's ``codes`` are still hidden after pass ``step`` of ``steps`` (0-based): N·cos(π/2 · (step + 1)/K), rounded down."""
    return max(0, math.floor(codes * math.cos(math.pi / 2 * ((step + 1) / steps))))  # max: cos(π/2) in floats may fall just below 0


def hide_at_random(codes: torch.Tensor, mask_code: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide a random share of each image's codes (B, N) behind ``mask_code``: the share is cos(π/2 · u), u uniform in [0, 1), at least one code.

    Returns the codes with the hidden ones replaced, and where they were hidden, (B, N) bool.
    """
    B, N = codes.shape
    share = torch.cos(math.pi / 2 * torch.rand(B, generator=generator))  # the same schedule the drawing follows, at a random point of it
    count = (share * N).ceil().clamp(min=1)  # (B,)
    rank = torch.rand(B, N, generator=generator).argsort(1).argsort(1)  # a random order of the positions
    hidden = (rank < count[:, None]).to(codes.device)
    return codes.masked_fill(hidden, mask_code), hidden


# --8<-- [end:schedule]


class MaskedUnified(Unified):
    """The unified model with full attention within an image, trained to guess hidden codes, drawing in K passes."""

    exact_likelihood = False  # guesses of hidden codes do not multiply into p(codes | name): no ranking by drawing

    @property
    def mask_code(self) -> int:
        """[MASK] as a code: its id is len(TEXT_VOCAB) + mask_code, right after the last image code."""
        return self.config.codebook_size

    def attention_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """Causal, and the image's N tokens see each other too (``omni_attention_mask``)."""
        return omni_attention_mask(ids, self.config.grid**2)

    # --8<-- [start:masked-loss]
    def generation_losses(self, prompts: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean cross-entropy of the hidden codes of each image (B, P), (B,): each is guessed at its own position, from the prompt and the visible codes."""
        codes = self.codes(x)
        shown, hidden = hide_at_random(codes, self.mask_code, generator)
        ids, _ = generation_sequence(prompts, shown)  # [BOS] prompt [BOI] c1 [MASK] c3 ...
        K = self.config.codebook_size
        logits = self.logits(ids)[:, 3:, len(TEXT_VOCAB) : len(TEXT_VOCAB) + K]  # (B, N, K): a guess at every image position, among the codes
        per_code = F.cross_entropy(logits.transpose(1, 2), codes, reduction="none")  # (B, N)
        return (per_code * hidden).sum(1) / hidden.sum(1)  # only the hidden codes count

    # --8<-- [end:masked-loss]

    # --8<-- [start:unmasking]
    @torch.no_grad()
    def generate_codes(
        self, prompts: list[str], guidance: float | None = None, generator: torch.Generator | None = None, steps: int | None = None
    ) -> torch.Tensor:
        """Sample the N codes of one image per prompt, (B, N), in ``steps`` passes (default: the config's K).

        Every pass guesses all hidden codes at once with classifier-free guidance, then keeps the
        surest guesses and hides the others again, so that ``hidden_after`` remain hidden.
        """
        c = self.config
        K = c.sample_steps if steps is None else steps
        s = c.guidance if guidance is None else guidance
        B, N = len(prompts), c.grid**2
        check_steps(K, N)
        device = next(self.parameters()).device
        prefix = guidance_prefix(prompts).to(device)  # (2B, 3): with and without the prompt
        codes = torch.full((B, N), self.mask_code, device=device)  # all hidden
        for step in range(K):
            ids = torch.cat([prefix, (codes + len(TEXT_VOCAB)).repeat(2, 1)], 1)
            logits = self.logits(ids)[:, 3:, len(TEXT_VOCAB) : len(TEXT_VOCAB) + c.codebook_size]  # (2B, N, K)
            p = guided_logits(logits[:B], logits[B:], s).softmax(-1)  # (B, N, K)
            guess = torch.multinomial(p.reshape(B * N, -1).cpu(), 1, generator=generator).view(B, N).to(device)
            hidden = codes == self.mask_code
            guess = torch.where(hidden, guess, codes)  # a code once shown stays
            noise = -torch.log(-torch.log(torch.rand(B, N, generator=generator).clamp(1e-20, 1))).to(device)  # Gumbel
            temperature = c.choice_temperature * (1 - (step + 1) / K)
            confidence = p.gather(-1, guess[..., None])[..., 0].log() + temperature * noise
            confidence = confidence.masked_fill(~hidden, float("inf"))  # shown codes are never hidden again
            keep_hidden = min(hidden_after(step, K, N), int(hidden.sum(1).min()) - 1)  # reveal at least one per pass
            least_sure = confidence.argsort(1)[:, : max(keep_hidden, 0)]
            codes = guess.scatter(1, least_sure, self.mask_code)
        return codes

    # --8<-- [end:unmasking]
