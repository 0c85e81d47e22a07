"""What every digit classifier of the understanding chapters shares: the loss, the accuracy, the spec.

A classifier is an ``nn.Module`` with ``logits(x)``: integer pixels (B, 64)
in, class scores (B, K) out. Its training loss is the cross-entropy of the
labels; it is validated on the error rate of the validation split and
evaluated on the accuracy of the test split. It draws no samples.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import Splits
from unimodel.models import ModelSpec


class Classifier(nn.Module):
    """Base class: subclasses define ``logits(x)``; training, scoring and the spec come from here."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss: the mean cross-entropy of the labels; it and the batch's accuracy to log."""
        x, y = batch
        logits = self.logits(x)  # (B, K)
        y = y.to(logits.device)
        loss = F.cross_entropy(logits, y)  # -(1/B) ∑_b log softmax(logits_b)[y_b]
        return loss, {"loss": loss.item(), "accuracy": (logits.argmax(dim=1) == y).float().mean().item()}


@torch.no_grad()
def accuracy(model: Classifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """The fraction of the images x (n, 64) whose class the model gets right, in eval mode."""
    training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = sum(
        (model.logits(x[i : i + batch_size].to(device)).argmax(dim=1) == y[i : i + batch_size].to(device)).sum().item() for i in range(0, len(x), batch_size)
    )
    model.train(training)
    return correct / len(x)


def classifier_spec(config_cls: type, model_cls: type, train_defaults) -> ModelSpec:
    """The spec of a digit classifier: validated on the validation error, evaluated on the test accuracy."""
    return ModelSpec(
        config_cls=config_cls,
        model_cls=model_cls,
        validate=lambda model, splits: 1.0 - accuracy(model, splits.val.x, splits.val.y),
        evaluate=lambda model, splits, **_options: _evaluate(model, splits),
        sample=None,
        train_defaults=train_defaults,
    )


def _evaluate(model: Classifier, splits: Splits) -> dict:
    return {"accuracy": accuracy(model, splits.test.x, splits.test.y), "images": len(splits.test)}
