"""What the package accepts from a user, checked where it enters, with a message that says what is allowed.

Sizes that a real use may need to go past (the bytes of a data file, the
pixels of a picture) are read from the environment; the others bound values
far beyond any use here, before they reach an allocation.
"""

from __future__ import annotations

import math
import os

MAX_SEED = 2**32 - 1  # NumPy's seeds end there; the loop's per-epoch shuffle seeds stay below 2**63
MAX_SAMPLES = 100_000  # images or points one command draws, samples a table judges
MAX_IMPORTANCE_SAMPLES = 100_000  # K of an importance-sampled NLL (the chapters use 5000)
MAX_STEPS = 100_000  # T of a DDPM (the paper's 1000)
DATA_BYTES = ("UNIMODEL_MAX_DATA_BYTES", 2**30)  # one IDX file's payload (MNIST's training images: 47 MB, EMNIST's largest: 547 MB)
IMAGE_PIXELS = ("UNIMODEL_MAX_IMAGE_PIXELS", 100_000_000)  # a picture to caption (a 48-megapixel photo fits)


def check_seed(seed: int, name: str = "seed") -> int:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_SEED}, got {seed}")
    return seed


def check_count(value: int, name: str, largest: int) -> int:
    if not 1 <= value <= largest:
        raise ValueError(f"{name} must be an integer from 1 to {largest}, got {value}")
    return value


def check_finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def limit(setting: tuple[str, int]) -> int:
    """The limit ``setting`` names: its environment variable when set (a positive integer), else its default."""
    variable, default = setting
    text = os.environ.get(variable)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"${variable} must be a positive integer, got {text!r}")
    return int(text)
