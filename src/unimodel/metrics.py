"""Scores for generated samples that need no pretrained network.

The judge is a logistic-regression classifier trained only on the real
training digits; it reads a generated image the way it reads a real one.
Generated 2-D points are scored by PacGAN's mode metrics (``unimodel.mixtures``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch

from unimodel.data import DIGIT_LEVELS, Splits, digits_splits
from unimodel.mixtures import EVAL_SIZE, mode_metrics


@lru_cache(maxsize=1)
def judge():
    """Logistic regression on the real training digits (pixels scaled to [0, 1])."""
    from sklearn.linear_model import LogisticRegression

    train = digits_splits().train
    x = train.x.numpy() / (DIGIT_LEVELS - 1)
    return LogisticRegression(max_iter=2000).fit(x, train.y.numpy())


def judge_accuracy_on_test() -> float:
    test = digits_splits().test
    return float(judge().score(test.x.numpy() / (DIGIT_LEVELS - 1), test.y.numpy()))


def sample_scores(images: np.ndarray) -> dict[str, float]:
    """How digit-like and how varied images in [0, 1], (n, 64), look to the judge.

    confidence: mean probability of the judge's chosen class (1 = unmistakably a digit).
    class_entropy: entropy of the histogram of chosen classes, in nats (log 10 = 2.30 when all classes are equally common).
    """
    probs = judge().predict_proba(np.asarray(images))
    counts = np.bincount(probs.argmax(1), minlength=10) / len(images)
    nonzero = counts[counts > 0]
    return {"confidence": float(probs.max(1).mean()), "class_entropy": float(-(nonzero * np.log(nonzero)).sum())}


def generated_scores(sample: Callable[[int, torch.Generator], torch.Tensor], splits: Splits, seed: int = 0) -> dict:
    """Scores of what ``sample(n, generator)`` draws with ``seed``, for a model trained on ``splits``.

    Points: PacGAN's mode metrics of 2500 samples. Images: how the judge reads 1000 samples.
    """
    generator = torch.Generator().manual_seed(seed)
    if splits.mixture is not None:
        return {"samples": EVAL_SIZE, **mode_metrics(sample(EVAL_SIZE, generator).cpu(), splits.mixture)}
    return {"samples": 1000, **sample_scores(sample(1000, generator).cpu().numpy())}
