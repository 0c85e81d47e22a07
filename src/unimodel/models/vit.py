"""Vision Transformer (Dosovitskiy et al. 2020, arXiv 2010.11929), tiny, for the 8x8 digits.

"An image is worth 16x16 words": cut the image into square patches, read
each patch as one token, and give the sequence of tokens to a plain
Transformer encoder, the one that reads sentences. A learned [CLS] token is
put in front of the patches; after the encoder it has gathered what it needs
from every patch through attention, and a linear layer turns it into the
scores of the 10 digits. The encoder knows nothing about the image's
geometry: where a patch came from is told to it only by a learned position
embedding added to the patch's token.

Here the images are 8x8, so a patch is 2x2 (16 patches) or 4x4 (4 patches)
instead of the paper's 16x16 pixels of a 224x224 image.

Read top to bottom: cutting the image into patches, the attention, the
encoder block, the model (patch embedding, [CLS] token, position embeddings,
classification). The loss (cross-entropy) is shared with the other digit
classifiers (``unimodel.models.classifier``), and so is how they are scored
(``unimodel.recipes.classifier``).

Legend for shape comments: B batch, p the side of a patch, N patches per
image ((8 / p) ** 2), T = N + 1 tokens (the patches and [CLS]), D the width
of a token (``dim``), h heads, d = D / h the width of one head, K classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import DIGIT_LEVELS
from unimodel.models.classifier import Classifier
from unimodel.models.layers import Block


@dataclass
class ViTConfig:
    data_dim: int = 64  # pixels per image, a square number (8x8 digits: 64)
    patch: int = 2  # side of a square patch in pixels; must divide the image's side (for 8x8: 1, 2, 4 or 8)
    dim: int = 64  # width D of every token, from the patch embedding to the classifier
    depth: int = 4  # Transformer encoder blocks
    heads: int = 4  # attention heads per block; must divide dim
    mlp_ratio: int = 2  # the MLP of a block is mlp_ratio * dim wide
    dropout: float = 0.1  # dropout probability after the embeddings, the attention and the MLP
    classes: int = 10  # classes to tell apart (the digits 0..9)
    levels: int = DIGIT_LEVELS  # values a pixel can take (0..16), scaled to [0, 1] inside the model
    positions: bool = True  # add learned position embeddings; False (the ablation) leaves the encoder a bag of patches
    learn_positions: bool = True  # False (the control): the position embeddings keep the random values they start with

    def __post_init__(self) -> None:
        for name in ("data_dim", "patch", "dim", "depth", "heads", "mlp_ratio", "classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.side**2 != self.data_dim:
            raise ValueError(f"data_dim must be a square number (the pixels of a square image), got {self.data_dim}")
        if self.side % self.patch != 0:
            raise ValueError(f"patch must divide the image's side {self.side}, got {self.patch}")
        if self.dim % self.heads != 0:
            raise ValueError(f"heads must divide dim, got dim={self.dim}, heads={self.heads}")
        if self.classes < 2:
            raise ValueError(f"classes must be at least 2, got {self.classes}")
        if self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")
        if not 0 <= self.dropout < 1:  # also rejects NaN
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (self.positions or self.learn_positions):
            raise ValueError("learn_positions=False keeps the random position embeddings fixed, so it needs positions=True")

    @property
    def side(self) -> int:
        """S, the side of the square images."""
        return math.isqrt(self.data_dim)

    @property
    def patches(self) -> int:
        """N, the patches per image."""
        return (self.side // self.patch) ** 2


# --8<-- [start:patchify]
def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut square images, (B, S * S) or (B, S, S), into patches, (B, N, p * p).

    The patches come in raster order (row by row, left to right), and so do
    the pixels inside each patch. With S = 8 and p = 4, patch 0 is the
    top-left 4x4 block, patch 1 the top-right one, patch 2 the bottom-left.
    """
    if images.dim() == 2:  # flat images: make them square
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"flat images must have a square number of pixels, got {images.shape[1]}")
        images = images.reshape(-1, side, side)  # (B, S, S)
    side = images.shape[-1]
    if images.dim() != 3 or images.shape[1] != side:
        raise ValueError(f"expected square images (B, S, S) or (B, S * S), got shape {tuple(images.shape)}")
    if side % patch != 0:
        raise ValueError(f"patch {patch} does not divide the image's side {side}")
    rows = side // patch  # patches per row and per column
    blocks = images.reshape(-1, rows, patch, rows, patch)  # (B, row of patch, row in patch, column of patch, column in patch)
    blocks = blocks.permute(0, 1, 3, 2, 4)  # (B, row of patch, column of patch, row in patch, column in patch)
    return blocks.reshape(-1, rows * rows, patch * patch)  # (B, N, p * p)


# --8<-- [end:patchify]


class ViT(Classifier):
    """Patches -> linear embedding, [CLS] in front, positions added -> encoder blocks -> [CLS] -> class scores."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Linear(c.patch * c.patch, c.dim)  # the same linear map for every patch
        self.cls = nn.Parameter(torch.zeros(1, 1, c.dim))  # the learned [CLS] token, (1, 1, D)
        self.position = nn.Parameter(torch.zeros(1, c.patches + 1, c.dim))  # one learned vector per token, (1, T, D)
        nn.init.trunc_normal_(self.position, std=0.02)  # small and random (drawn from the seeded global RNG)
        if not c.positions:  # drawn all the same, so the other weights start where they would with positions
            nn.init.zeros_(self.position)
        self.position.requires_grad_(c.positions and c.learn_positions)  # frozen: zeros (no positions) or the random draw (the control)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.dim, c.heads, c.mlp_ratio, c.dropout) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)  # pre-norm leaves the last block's output unnormalised
        self.head = nn.Linear(c.dim, c.classes)

    # --8<-- [start:patch-embedding]
    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: [CLS] and the embedded patches, each plus its position, (B, T, D), from integer pixels (B, 64)."""
        device = self.head.weight.device
        image = x.to(device).float() / (self.config.levels - 1)  # (B, 64) in [0, 1]
        patches = patchify(image, self.config.patch)  # (B, N, p * p)
        h = self.embed(patches)  # E x_n for every patch n, (B, N, D)
        cls = self.cls.expand(len(h), -1, -1)  # the same [CLS] for every image, (B, 1, D)
        h = torch.cat([cls, h], dim=1)  # [CLS] is token 0, (B, T, D)
        return self.dropout(h + self.position)  # z_0 = [x_cls; E x_1; …; E x_N] + E_pos

    # --8<-- [end:patch-embedding]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The tokens after the last block, (B, T, D), and every block's attention weights, depth x (B, h, T, T)."""
        h = self.tokens(x)
        maps = []
        for block in self.blocks:
            h, weights = block(h)
            maps.append(weights)
        return h, maps

    # --8<-- [start:classify]
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-probabilities of the classes, (B, K), from integer pixels (B, 64)."""
        h, _ = self.encode(x)  # (B, T, D)
        return self.head(self.norm(h[:, 0]))  # only [CLS] is read: y = W·LN(z_L^0), (B, K)

    # --8<-- [end:classify]

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's attention weights in eval mode (no dropout), depth x (B, h, T, T); token 0 is [CLS]."""
        training = self.training
        self.eval()
        _, maps = self.encode(x)
        self.train(training)
        return maps

    @torch.no_grad()
    def position_similarity(self) -> torch.Tensor:
        """Cosine similarity between the learned position embeddings of the patches ([CLS] left out), (N, N)."""
        unit = F.normalize(self.position[0, 1:], dim=1)  # each patch's position vector at length 1, (N, D)
        return unit @ unit.T  # (N, N)
