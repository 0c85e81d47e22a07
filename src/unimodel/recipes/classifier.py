"""What the digit classifiers share (networks: ``unimodel.models.classifier``, ``convnet``, ``vit``): test
accuracy, and a spec that validates on the validation split's error rate."""

from __future__ import annotations

import torch

from unimodel.data import Splits
from unimodel.models.classifier import Classifier
from unimodel.recipes import ModelSpec


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
