"""VQ-VAE (van den Oord et al. 2017, arXiv 1711.00937): an image as a short grid of discrete codes.

A convolutional encoder turns an 8x8 digit into a G x G grid of vectors;
each vector is replaced by its nearest entry of a learned codebook of K
vectors, and a convolutional decoder rebuilds the image from those entries.
The image is then G² integers in 0..K-1: words a language model can read
and write. That is what the unified model of ``unimodel.models.unified``
(Chameleon-style) needs from it.

"Nearest" is an argmin, which has no gradient. The straight-through
estimator copies the decoder's gradient onto the encoder's output as if the
quantization were the identity; the codebook learns from its own term,
which pulls each chosen code toward the encoder outputs that chose it; a
commitment term keeps the encoder's outputs close to their codes.
Codes no output chooses for a while are moved onto encoder outputs of the
current batch (a "dead code restart"), so the whole codebook is used.

Read top to bottom: the config, quantization with the straight-through
estimator, the three losses, the model, a round trip through the codes. How
it is trained and scored is its recipe (``unimodel.recipes.vqvae``).

Legend for shape comments: B batch, G the side of the code grid, N = G²
codes per image, C the width of a code vector, K codebook entries, L levels
per pixel (17), P pixels per image (64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE


@dataclass
class VQVAEConfig:
    data_dim: int = 64  # pixels per image: the convolutions are built for the 8x8 digits
    codebook_size: int = 32  # K, entries of the codebook: the image "words"
    code_dim: int = 16  # C, width of a code vector
    grid: int = 4  # G: an 8x8 image becomes G x G codes (4: 16 codes, each for a 2x2 patch and its surroundings)
    hidden: int = 64  # channels of the encoder's and decoder's convolutions
    beta: float = 0.25  # weight of the commitment loss (the paper's beta)
    restart_after: float = 0.05  # a code whose running use falls below this share of a fair share is moved onto an encoder output; 0 never restarts
    levels: int = DIGIT_LEVELS  # values a pixel can take (0..16): the decoder predicts a categorical over them

    def __post_init__(self) -> None:
        for name in ("codebook_size", "code_dim", "grid", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.data_dim != DIGIT_SIDE * DIGIT_SIDE:
            raise ValueError(f"the VQ tokenizer is built for 8x8 images (data_dim 64), got data_dim {self.data_dim}; train it on the digits")
        if self.grid not in (1, 2, 4, 8):
            raise ValueError(f"grid must be 1, 2, 4 or 8 (a divisor of the image side 8), got {self.grid}")
        if not (self.beta >= 0 and self.restart_after >= 0):
            raise ValueError("beta and restart_after must be >= 0")

    @property
    def codes(self) -> int:
        """N, codes per image."""
        return self.grid * self.grid


# --8<-- [start:quantize]
def quantize(z_e: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest codebook entry of every vector of ``z_e`` (..., C), and its index.

    Returns (z_q, k): z_q has z_e's shape and carries the straight-through
    gradient, k has z_e's shape without the last dimension.
    """
    flat = z_e.reshape(-1, z_e.shape[-1])  # (M, C)
    distances = torch.cdist(flat, codebook)  # (M, K)
    k = distances.argmin(dim=1)  # k = argmin_j ‖z_e - e_j‖
    e_k = codebook[k].reshape(z_e.shape)
    z_q = z_e + (e_k - z_e).detach()  # forward: e_k; backward: the gradient of z_q goes to z_e unchanged
    return z_q, k.reshape(z_e.shape[:-1])


# --8<-- [end:quantize]


# --8<-- [start:vq-losses]
def vq_losses(z_e: torch.Tensor, e_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The codebook and commitment losses per image, summed over codes and channels, (B,) each."""
    dims = tuple(range(1, z_e.dim()))
    codebook = ((z_e.detach() - e_k) ** 2).sum(dims)  # ‖sg[z_e] - e_k‖²: moves the code
    commitment = ((z_e - e_k.detach()) ** 2).sum(dims)  # ‖z_e - sg[e_k]‖²: moves the encoder
    return codebook, commitment


# --8<-- [end:vq-losses]


def _halvings(grid: int) -> int:
    """How many stride-2 convolutions take the 8x8 image to a grid x grid map."""
    return {8: 0, 4: 1, 2: 2, 1: 3}[grid]


def as_images(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Pixels (B, P), values 0..levels-1, as images in [0, 1], (B, 1, 8, 8)."""
    return (x.float() / (levels - 1)).reshape(-1, 1, DIGIT_SIDE, DIGIT_SIDE)


def conv_encoder(hidden: int, out: int, grid: int) -> nn.Sequential:
    """Images (B, 1, 8, 8) -> feature maps (B, out, grid, grid): a 3x3 convolution, stride-2 halvings, a 1x1 projection."""
    down = [layer for _ in range(_halvings(grid)) for layer in (nn.Conv2d(hidden, hidden, 4, stride=2, padding=1), nn.ReLU())]
    return nn.Sequential(nn.Conv2d(1, hidden, 3, padding=1), nn.ReLU(), *down, nn.Conv2d(hidden, out, 1))


class VQVAE(nn.Module):
    """Encoder (B, P) -> (B, G, G, C) vectors -> nearest codes (B, N) -> decoder -> (B, P, L) pixel logits."""

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = conv_encoder(c.hidden, c.code_dim, c.grid)
        up = [layer for _ in range(_halvings(c.grid)) for layer in (nn.ConvTranspose2d(c.hidden, c.hidden, 4, stride=2, padding=1), nn.ReLU())]
        self.decoder = nn.Sequential(nn.Conv2d(c.code_dim, c.hidden, 3, padding=1), nn.ReLU(), *up, nn.Conv2d(c.hidden, c.levels, 1))
        self.codebook = nn.Parameter(torch.randn(c.codebook_size, c.code_dim) * 0.1)  # (K, C)
        self.register_buffer("usage", torch.full((c.codebook_size,), 1.0 / c.codebook_size))  # running share of outputs choosing each code

    def encode_vectors(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels (B, P), values 0..L-1, -> encoder outputs z_e (B, G, G, C)."""
        return self.encoder(as_images(x, self.config.levels)).permute(0, 2, 3, 1)  # (B, G, G, C)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The codes of images, (B, N) int64, row by row."""
        return quantize(self.encode_vectors(x), self.codebook)[1].flatten(1)

    def decode_vectors(self, z_q: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, G, G, C) -> pixel logits (B, P, L)."""
        logits = self.decoder(z_q.permute(0, 3, 1, 2))  # (B, L, 8, 8)
        return logits.flatten(2).transpose(1, 2)  # (B, P, L)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], (B, P): the mean pixel of the decoder's categorical, for codes (B, N)."""
        G = self.config.grid
        z_q = self.codebook[codes].reshape(len(codes), G, G, -1)  # (B, G, G, C)
        probs = self.decode_vectors(z_q).softmax(-1)  # (B, P, L)
        levels = torch.arange(self.config.levels, device=probs.device, dtype=probs.dtype)
        return probs @ levels / (self.config.levels - 1)

    def _restart_dead_codes(self, z_e: torch.Tensor, k: torch.Tensor) -> None:
        """Track how often each code is chosen; move codes that are almost never chosen onto random encoder outputs."""
        K = self.config.codebook_size
        share = torch.bincount(k.flatten(), minlength=K).float() / k.numel()
        self.usage.mul_(0.99).add_(0.01 * share)
        dead = self.usage < self.config.restart_after / K
        if dead.any():
            flat = z_e.detach().reshape(-1, z_e.shape[-1])
            picks = torch.randint(len(flat), (int(dead.sum()),), device=flat.device)
            self.codebook.data[dead] = flat[picks]
            self.usage[dead] = 1.0 / K

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per image (B,): reconstruction NLL in nats, codebook and commitment losses, and the total."""
        z_e = self.encode_vectors(x)
        z_q, k = quantize(z_e, self.codebook)
        if self.training and self.config.restart_after > 0:
            self._restart_dead_codes(z_e, k)
        logits = self.decode_vectors(z_q)  # (B, P, L)
        # -log p(x | z_q): a categorical over the levels of each pixel
        reconstruction = F.cross_entropy(logits.transpose(1, 2), x, reduction="none").sum(1)
        codebook, commitment = vq_losses(z_e, self.codebook[k])
        # L = -log p(x | z_q) + ‖sg[z_e] - e‖² + β·‖z_e - sg[e]‖²
        total = reconstruction + codebook + self.config.beta * commitment
        return {"loss": total, "reconstruction": reconstruction, "codebook": codebook, "commitment": commitment}

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        parts = {name: value.mean() for name, value in self.losses(batch[0]).items()}
        return parts["loss"], {name: value.item() for name, value in parts.items() if name != "loss"}


def reconstruct(model: VQVAE, x: torch.Tensor) -> torch.Tensor:
    """Images (B, P) in [0, 1] after a round trip through the codes."""
    return model.decode(model.encode(x))
