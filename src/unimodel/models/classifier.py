"""What every digit classifier of the understanding chapters shares: the loss.

A classifier is an ``nn.Module`` with ``logits(x)``: integer pixels (B, 64)
in, class scores (B, K) out. Its training loss is the cross-entropy of the
labels. It draws no samples. How every classifier is scored (error rate on
the validation split, accuracy on the test split) is ``unimodel.recipes.classifier``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Classifier(nn.Module):
    """Base class: subclasses define ``logits(x)``; the training loss comes from here."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss: the mean cross-entropy of the labels; it and the batch's accuracy to log."""
        x, y = batch
        logits = self.logits(x)  # (B, K)
        y = y.to(logits.device)
        loss = F.cross_entropy(logits, y)  # -(1/B) ∑_b log softmax(logits_b)[y_b]
        return loss, {"loss": loss.item(), "accuracy": (logits.argmax(dim=1) == y).float().mean().item()}
