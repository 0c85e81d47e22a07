"""A Transfusion-style unified model: one Transformer writes text token by token and draws an image by flow matching.

Transfusion (Zhou et al. 2024, arXiv 2408.11039) drops the image tokenizer's codebook. An image
enters the sequence as continuous vectors, one per patch, and the same Transformer is trained with
two losses at once: next-token cross-entropy on the text, and a diffusion loss on the image's
vectors, L = L_LM + λ·L_diffusion with λ = 5. Three things change from ``unimodel.models.unified``:

- what an image's 16 positions hold: its 2x2-pixel patches, each a vector of 4 pixel values put
  through one linear layer, plus an embedding of the noise level t. Transfusion's patches are
  those of a VAE's latents; an 8x8 digit needs no compression, and 16 patches of 4 values are its
  64 pixels, nothing lost, nothing trained before the Transformer;
- the drawing loss: Transfusion's is the DDPM's noise prediction; here it is the flow-matching loss
  of ``unimodel.experiments.flow`` (straight path, velocity target, as BAGEL trains): the patches
  at a random t, and a linear layer reads each image position's velocity from its own vector;
- the attention: causal over the text, full within an image (``omni_attention_mask``), so every
  patch of a noisy image sees every other; a drawing is integrated from noise in Euler steps, each
  a pass of the whole Transformer, with classifier-free guidance on the velocities.

Reading is the same path at the clean end, t = 0: the understanding sequence holds the image's
patches, the caption is written after them. The sequences, the two tasks, captioning and the
recipe are the unified model's. Drawing gives no exact log p(image | name) (``exact_likelihood``).

Legend for shape comments: B batch, N patches per image (16), Q pixels per patch (4), T tokens
of a sequence, D the width of a token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unimodel.data import DIGIT_SIDE
from unimodel.experiments.flow import euler_sample, training_example, velocity_target
from unimodel.limits import MAX_STEPS, check_count
from unimodel.models.diffusion import timestep_embedding
from unimodel.models.flow import TIME_SCALE
from unimodel.models.unified import (
    TEXT_VOCAB,
    SequenceConfig,
    SequenceModel,
    generation_sequence,
    guidance_prefix,
    guided_logits,
    omni_attention_mask,
    with_image,
)

IMAGE = 0  # the one image "code": every image position of a sequence holds its id, len(TEXT_VOCAB), and the patch's vector replaces its embedding


@dataclass
class TransfusionConfig(SequenceConfig):
    dropout: float = 0.0  # none: a denoiser must read each noisy pixel as it is (the chapter's 0.3 halves what it draws right; see its page)
    flow_weight: float = 5.0  # λ in L_LM + λ·L_flow: Transfusion's weight of its image loss
    sample_steps: int = 16  # Euler steps (passes of the Transformer) that draw an image
    time_dim: int = 64  # size of the sinusoidal embedding of the noise level t

    def __post_init__(self) -> None:
        super().__post_init__()
        if DIGIT_SIDE % self.grid or self.data_dim != DIGIT_SIDE**2:
            raise ValueError(f"grid must divide the image's side {DIGIT_SIDE} and data_dim be {DIGIT_SIDE**2}, got grid={self.grid}, data_dim={self.data_dim}")
        if not self.flow_weight > 0 or self.time_dim < 2 or self.time_dim % 2:
            raise ValueError(f"flow_weight must be > 0 and time_dim even and positive, got {self.flow_weight}, {self.time_dim}")
        check_count(self.sample_steps, "sample_steps", MAX_STEPS)

    @property
    def vocab(self) -> int:
        return len(TEXT_VOCAB) + 1  # the text, and IMAGE

    @property
    def patch(self) -> int:
        """The side of a patch in pixels: 2 for a 4x4 grid of patches on an 8x8 image."""
        return DIGIT_SIDE // self.grid


# --8<-- [start:patches]
def patches(x: torch.Tensor, side: int) -> torch.Tensor:
    """Images (B, 64) row by row to their patches (B, N, Q): patch n is the side x side square at row n // grid, column n % grid."""
    B, grid = len(x), DIGIT_SIDE // side
    return x.reshape(B, grid, side, grid, side).transpose(2, 3).reshape(B, grid * grid, side * side)


def unpatched(p: torch.Tensor, side: int) -> torch.Tensor:
    """Patches (B, N, Q) back to images (B, 64): the inverse of ``patches``."""
    B, grid = len(p), DIGIT_SIDE // side
    return p.reshape(B, grid, grid, side, side).transpose(2, 3).reshape(B, DIGIT_SIDE * DIGIT_SIDE)


# --8<-- [end:patches]


class Transfusion(SequenceModel):
    """One Transformer over text tokens and continuous patches: next-token prediction for the text, flow matching for the image."""

    def __init__(self, config: TransfusionConfig) -> None:
        super().__init__(config)
        c = config
        self.patch_in = nn.Linear(c.patch**2, c.dim)  # a patch's pixels to a token vector
        self.time = nn.Sequential(nn.Linear(c.time_dim, c.dim), nn.SiLU(), nn.Linear(c.dim, c.dim))  # the noise level t to a vector added to every patch
        self.patch_out = nn.Linear(c.dim, c.patch**2)  # a token vector to the velocity of its patch's pixels

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """What an image's N positions hold in a sequence, (B, N): IMAGE everywhere (the patches' vectors go there, ``with_image``)."""
        return torch.full((len(x), self.config.grid**2), IMAGE, device=x.device)

    def rebuilt(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, P) as the model's image tokens give them back, in [0, 1]: patches are the pixels themselves."""
        return x.float() / (self.config.levels - 1)

    def as_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, P) of pixel levels 0..16 to patches (B, N, Q) of values in [-1, 1], the data end (t = 0) of the flow."""
        return patches(x.float() / (self.config.levels - 1) * 2 - 1, self.config.patch)

    # --8<-- [start:embedding]
    def image_vectors(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Token vectors (B, N, D) of patches p (B, N, Q) at noise level t (B,): a linear map of each patch, plus an embedding of t."""
        time = self.time(timestep_embedding(TIME_SCALE * t, self.config.time_dim))  # (B, D)
        return self.patch_in(p) + time[:, None]

    def embed_sequence(self, ids: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Token vectors (B, T, D); with the images ``x`` of understanding sequences, their clean patches (t = 0) at the image positions."""
        h = self.embed(ids)
        if x is not None:
            h = with_image(h, ids, self.image_vectors(self.as_patches(x), torch.zeros(len(x), device=h.device)))
        return h

    def attention_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """Causal, and the image's N patches see each other too (``omni_attention_mask``)."""
        return omni_attention_mask(ids, self.config.grid**2)

    def velocity(self, ids: torch.Tensor, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v_θ: the velocity (B, N, Q) of noisy patches p (B, N, Q) at noise level t (B,) in generation sequences ``ids`` ([BOS] prompt [BOI] ...)."""
        h = with_image(self.embed(ids), ids, self.image_vectors(p, t))
        return self.patch_out(self.states(h, ids)[:, 3:])  # each patch's velocity read at its own position

    # --8<-- [end:embedding]

    # --8<-- [start:flow-loss]
    def generation_losses(self, prompts: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """λ times the flow-matching loss of each image (B, P) after its prompt, (B,): the squared error of the velocity at one random t."""
        x0 = self.as_patches(x)  # (B, N, Q), the data end of the path
        t, noise, x_t = training_example(x0, generator)  # t ~ U(0, 1), ε ~ N(0, I), x_t = (1 - t)·x0 + t·ε
        ids, _ = generation_sequence(prompts, self.codes(x))  # [BOS] prompt [BOI] and N image positions
        error = (self.velocity(ids, x_t, t) - velocity_target(x0, noise)) ** 2  # (B, N, Q), target ε - x0
        return self.config.flow_weight * error.mean((1, 2))

    # --8<-- [end:flow-loss]

    # --8<-- [start:flow-drawing]
    @torch.no_grad()
    def generate_images(
        self, prompts: list[str], guidance: float | None = None, generator: torch.Generator | None = None, steps: int | None = None
    ) -> torch.Tensor:
        """One image per prompt (a digit's name, or [NULL]), (B, P) in [0, 1]: ``steps`` Euler steps (default: the config's) from noise.

        Every step runs the sequences twice, with the prompt and with [NULL], and moves along
        v_null + s (v_prompt - v_null), the guidance of the other models applied to velocities.
        """
        c = self.config
        s = c.guidance if guidance is None else guidance
        steps = c.sample_steps if steps is None else steps
        check_count(steps, "steps", MAX_STEPS)
        device = next(self.parameters()).device
        B, N = len(prompts), c.grid**2
        prefix = guidance_prefix(prompts).to(device)  # (2B, 3): with and without the prompt
        ids = torch.cat([prefix, torch.full((2 * B, N), len(TEXT_VOCAB) + IMAGE, device=device)], 1)  # and the N image positions

        def guided_velocity(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            v = self.velocity(ids, p.repeat(2, 1, 1), t.repeat(2))  # (2B, N, Q)
            return guided_logits(v[:B], v[B:], s)  # the same line as on logits: v_null + s·(v_prompt - v_null)

        noise = torch.randn((B, N, c.patch**2), generator=generator).to(device)  # t = 1
        x0 = euler_sample(guided_velocity, noise, steps)  # t = 0
        return ((unpatched(x0, c.patch) + 1) / 2).clamp(0, 1)

    # --8<-- [end:flow-drawing]
