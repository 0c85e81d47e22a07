"""A small convolutional network for the 8x8 digits: the baseline the ViT chapter measures against.

A convolution slides the same small filter over every position of the
image, so the network knows two things before it sees any data: nearby
pixels belong together (locality), and a stroke means the same wherever it
appears (translation equivariance, made approximate invariance by pooling).
The ViT is told neither; it has to learn them from the data, which is why
it needs more of it (Dosovitskiy et al. 2020, arXiv 2010.11929, sec. 3.1 and 4.3).

Legend for shape comments: B batch, C channels, H and W the image's sides, K classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from unimodel.data import DIGIT_LEVELS
from unimodel.models.classifier import Classifier


@dataclass
class ConvNetConfig:
    data_dim: int = 64  # pixels per image, a square number whose side two poolings halve (8x8 digits: 64)
    channels: int = 32  # filters of the first two convolutions; the third has twice as many
    hidden: int = 64  # width of the fully connected layer before the class scores
    dropout: float = 0.1  # dropout probability before the last two layers
    classes: int = 10  # classes to tell apart (the digits 0..9)
    levels: int = DIGIT_LEVELS  # values a pixel can take (0..16), scaled to [0, 1] inside the model

    def __post_init__(self) -> None:
        for name in ("data_dim", "channels", "hidden", "classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.side**2 != self.data_dim or self.side % 4:
            raise ValueError(f"data_dim must be the pixels of a square image whose side is a multiple of 4, got {self.data_dim}")
        if self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")
        if not 0 <= self.dropout < 1:  # also rejects NaN
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def side(self) -> int:
        return math.isqrt(self.data_dim)


class ConvNet(Classifier):
    """Two 3x3 convolutions, pooling, a third convolution, pooling, then two linear layers."""

    def __init__(self, config: ConvNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),  # (B, C, H, W)
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, C, H/2, W/2)
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 2C, H/4, W/4)
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(),  # (B, 2C * H/4 * W/4)
            nn.Dropout(config.dropout),
            nn.Linear(2 * c * (config.side // 4) ** 2, config.hidden), nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.classes),  # (B, K)
        )  # fmt: skip

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores, (B, K), from integer pixels (B, 64)."""
        device = self.head[-1].weight.device
        side = self.config.side
        image = x.to(device).float().reshape(-1, 1, side, side) / (self.config.levels - 1)  # (B, 1, H, W) in [0, 1]
        return self.head(self.features(image))
