"""PixelCNN (van den Oord, Kalchbrenner & Kavukcuoglu 2016, arXiv 1601.06759).

An autoregressive model with an exact likelihood. The pixels are put in
raster order (row by row, left to right) and the chain rule factors the
image's probability into one conditional per pixel,

    p(x) = prod_i p(x_i | x_1, ..., x_{i-1}),

each a categorical over the 17 levels. One network gives all 64 conditionals
in a single pass: its convolutions are masked so that the output at a pixel
depends on the earlier pixels only. Training is plain maximum likelihood;
sampling draws one pixel at a time, 64 passes.

Read top to bottom: the masks, the masked convolution, the residual block,
the model (log p(x), the loss, sampling). How it is trained and scored is its
recipe (``unimodel.recipes.pixelcnn``).

Legend for shape comments: B batch, C channels, H = W = 8 the image's side,
P = H * W pixels per image (64), L levels per pixel (17).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import DIGIT_LEVELS


@dataclass
class PixelCNNConfig:
    data_dim: int = 64  # pixels per image, a square number (64 for the 8x8 digits)
    levels: int = DIGIT_LEVELS  # values a pixel can take (0..16)
    channels: int = 64  # feature maps of every hidden layer
    layers: int = 6  # residual blocks of mask-B convolutions after the first, mask-A, layer
    first_kernel: int = 7  # side of the first convolution's kernel (odd)
    kernel: int = 3  # side of the kernels in the residual blocks (odd)
    dropout: float = 0.2  # dropout probability inside each residual block

    def __post_init__(self) -> None:
        for name in ("data_dim", "channels", "layers", "first_kernel", "kernel"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if math.isqrt(self.data_dim) ** 2 != self.data_dim:
            raise ValueError(f"data_dim must be a square number (the pixels of a square image), got {self.data_dim}")
        if self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")
        if self.first_kernel % 2 == 0 or self.kernel % 2 == 0:
            raise ValueError(f"kernel sides must be odd, got first_kernel={self.first_kernel}, kernel={self.kernel}")
        if not 0 <= self.dropout < 1:  # also rejects NaN
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


# --8<-- [start:mask]
def causal_mask(kernel: int, mask_type: str) -> torch.Tensor:
    """A (kernel, kernel) mask of 0s and 1s: 1 where the kernel may look.

    The kernel is centred on the pixel being predicted. It may look at the
    rows above and, in the centre row, at the pixels to the left: the earlier
    pixels in raster order. Mask "A" (the first layer, which reads the image)
    also hides the centre, so a pixel never sees itself; mask "B" (the later
    layers, which read features) keeps it, since the features at a position
    were computed from the pixels before it.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    mask = torch.ones(kernel, kernel)
    centre = kernel // 2
    mask[centre, centre + (mask_type == "B") :] = 0  # the centre (mask A) and the pixels to its right
    mask[centre + 1 :, :] = 0  # the rows below
    return mask


# --8<-- [end:mask]


class MaskedConv2d(nn.Conv2d):
    """A same-size convolution whose kernel is multiplied by a causal mask at every call."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, mask_type: str) -> None:
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        self.register_buffer("mask", causal_mask(kernel, mask_type), persistent=False)  # follows the device, not saved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)  # (B, C_out, H, W)


class ResidualBlock(nn.Module):
    """h + conv_B(dropout(ReLU(h))): the block adds what its masked convolution sees to its input."""

    def __init__(self, channels: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.conv = MaskedConv2d(channels, channels, kernel, "B")
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.conv(self.dropout(F.relu(h)))  # (B, C, H, W)


class PixelCNN(nn.Module):
    """A mask-A convolution, residual blocks of mask-B convolutions, and 1x1 convolutions to L logits per pixel."""

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.side = math.isqrt(c.data_dim)
        self.first = MaskedConv2d(1, c.channels, c.first_kernel, "A")  # reads the image: one channel of intensities
        self.blocks = nn.Sequential(*(ResidualBlock(c.channels, c.kernel, c.dropout) for _ in range(c.layers)))
        # 1x1 convolutions see only their own position's features: causal without a mask
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c.channels, c.channels, 1), nn.ReLU(), nn.Conv2d(c.channels, c.levels, 1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised log p(x_i = k | x_<i) for every pixel i and level k, (B, L, H, W), from integer pixels (B, P)."""
        image = (x.float() / (self.config.levels - 1)).reshape(-1, 1, self.side, self.side)  # (B, 1, H, W) in [0, 1]
        return self.head(self.blocks(self.first(image)))  # (B, L, H, W)

    # --8<-- [start:nll]
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats per image, (B,), for integer pixels x (B, P)."""
        target = x.reshape(-1, self.side, self.side)  # (B, H, W)
        # log p(x_i | x_{<i}) for every pixel at once: the masks keep each logit from seeing x_i and later pixels
        log_p = -F.cross_entropy(self.logits(x), target, reduction="none")  # (B, H, W)
        return log_p.flatten(1).sum(1)  # log p(x) = ∑_i log p(x_i | x_{<i})

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss: the mean negative log-likelihood, nats per image; and that value to log."""
        loss = -self.log_prob(batch[0]).mean()  # -(1/B) ∑_b log p(x_b)
        return loss, {"nll": loss.item()}

    # --8<-- [end:nll]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images drawn pixel by pixel in raster order (P network passes), intensities in [0, 1], (n, P)."""
        training = self.training
        self.eval()  # no dropout while sampling
        device = next(self.parameters()).device
        x = torch.zeros(n, self.config.data_dim, dtype=torch.long, device=device)  # (n, P), filled in as it goes
        for i in range(self.config.data_dim):
            row, col = divmod(i, self.side)
            probs = F.softmax(self.logits(x)[:, :, row, col], dim=1)  # p(x_i | x_{<i}), (n, L)
            # drawn on the CPU so that a CPU generator serves a model on any device
            x[:, i] = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(device)
        self.train(training)
        return x.float() / (self.config.levels - 1)
