"""Scores for generated samples that need no pretrained network.

The judge is a logistic-regression classifier trained only on the real
training digits; it reads a generated image the way it reads a real one.
Improved precision and recall (Kynkäänniemi et al. 2019, arXiv 1904.06991)
compare generated and real images by their k nearest neighbours.
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


COVERED_SHARE = 0.01  # a class counts as covered when at least 1% of the samples (a tenth of its fair share) are judged to be it


def sample_scores(images: np.ndarray) -> dict[str, float]:
    """How digit-like and how varied images in [0, 1], (n, 64), look to the judge.

    confidence: mean probability of the judge's chosen class (1 = unmistakably a digit).
    balanced_confidence: the same, averaged within each class the judge chooses and then over the
        10 classes, a class no sample is judged to be counting 0: a model that draws only easy
        digits, or only some of them, does not score as well as one that draws them all.
    class_entropy: entropy of the histogram of chosen classes, in nats (log 10 = 2.30 when all classes are equally common).
    classes: how many classes at least ``COVERED_SHARE`` of the samples are judged to be.
    """
    probs = judge().predict_proba(np.asarray(images))
    chosen, confidence = probs.argmax(1), probs.max(1)
    counts = np.bincount(chosen, minlength=10)
    shares = counts / len(images)
    per_class = np.bincount(chosen, weights=confidence, minlength=10) / np.maximum(counts, 1)
    nonzero = shares[shares > 0]
    return {
        "confidence": float(confidence.mean()),
        "balanced_confidence": float(per_class.mean()),
        "class_entropy": float(-(nonzero * np.log(nonzero)).sum()),
        "classes": int((shares >= COVERED_SHARE).sum()),
    }


# --8<-- [start:precision-recall]
def knn_precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall of ``fake`` against ``real`` samples, (n, d) each (Kynkäänniemi et al. 2019).

    Each sample stands for a ball reaching to its k-th nearest neighbour in its own set. precision:
    the share of fake samples inside at least one real ball (they look real); recall: the share of
    real samples inside at least one fake ball (the real variety is reproduced).
    """
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"need more than k = {k} samples in each set, got {len(real)} real and {len(fake)} fake")
    real, fake = real.double().flatten(1), fake.double().flatten(1)

    def radii(x: torch.Tensor) -> torch.Tensor:  # distance from each sample to its k-th nearest other sample
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values  # k + 1: the nearest is the sample itself

    def inside(points: torch.Tensor, centres: torch.Tensor) -> float:  # share of points within some centre's ball
        return (torch.cdist(points, centres) <= radii(centres)).any(1).double().mean().item()

    return {"precision": inside(fake, real), "recall": inside(real, fake)}


# --8<-- [end:precision-recall]


def generated_scores(sample: Callable[[int, torch.Generator], torch.Tensor], splits: Splits, seed: int = 0) -> dict:
    """Scores of what ``sample(n, generator)`` draws with ``seed``, for a model trained on ``splits``.

    Points: PacGAN's mode metrics of 2500 samples. Images: how the judge reads 1000 samples.
    """
    generator = torch.Generator().manual_seed(seed)
    if splits.mixture is not None:
        return {"samples": EVAL_SIZE, **mode_metrics(sample(EVAL_SIZE, generator).cpu(), splits.mixture)}
    return {"samples": 1000, **sample_scores(sample(1000, generator).cpu().numpy())}
