"""Data sets that ship with the dependencies, and a reader for MNIST-style files.

* ``digits_splits`` -- scikit-learn's 8x8 handwritten digits (1797 images, pixel
  values 0..16) split exactly as in the digits protocol of J. Tomczak's
  *Deep Generative Modeling* code: scikit-learn's fixed order, no shuffling,
  train ``[:1000]``, validation ``[1000:1350]``, test ``[1350:]``.
* ``read_idx`` and ``idx_splits`` -- the IDX format of MNIST
  (``train-images-idx3-ubyte`` and friends), so the same models can be
  pointed at real MNIST files a user has (``unimodel train vae --data DIR``).
* ``mixture_splits`` -- points drawn from the 2-D Gaussian mixtures of the
  mode-collapse benchmark (``unimodel.mixtures``: ``ring`` and ``grid``).

Nothing here downloads anything.
"""

from __future__ import annotations

import gzip
import math
import struct
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from unimodel.limits import DATA_BYTES, IMAGE_PIXELS, limit
from unimodel.mixtures import EVAL_SIZE, MIXTURES, TRAIN_SIZE, Mixture

DIGIT_LEVELS = 17  # pixel values of the 8x8 digits are integers 0..16
DIGIT_SIDE = 8  # images are 8x8
TRAIN_END, VAL_END = 1000, 1350  # the protocol's split points


@dataclass(frozen=True)
class Split:
    """Examples and their labels: images as integer pixel values with their digits, or 2-D points with their modes."""

    x: torch.Tensor  # (N, 64) int64 pixel values 0..16, or (N, 2) float32 points
    y: torch.Tensor  # (N,) int64: the digit 0..9, or the mixture component

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split
    mixture: Mixture | None = None  # the distribution the points were drawn from (2-D data only)

    def first(self, n: int) -> Splits:
        """The same splits with only the first ``n`` training examples: validation and test are unchanged."""
        if not 0 < n <= len(self.train):
            raise ValueError(f"the training split has {len(self.train)} examples; cannot keep the first {n}")
        return replace(self, train=Split(self.train.x[:n], self.train.y[:n]))

    def first_test(self, n: int) -> Splits:
        """The same splits with only the first ``n`` test examples: training and validation are unchanged."""
        if not 0 < n <= len(self.test):
            raise ValueError(f"the test split has {len(self.test)} examples; cannot keep the first {n}")
        return replace(self, test=Split(self.test.x[:n], self.test.y[:n]))


def digits_splits() -> Splits:
    """The 8x8 digits in the protocol's train / validation / test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.data.astype(np.int64))  # (1797, 64)
    y = torch.from_numpy(bunch.target.astype(np.int64))  # (1797,)
    return Splits(
        train=Split(x[:TRAIN_END], y[:TRAIN_END]),
        val=Split(x[TRAIN_END:VAL_END], y[TRAIN_END:VAL_END]),
        test=Split(x[VAL_END:], y[VAL_END:]),
    )


# IDX: a big-endian header (two zero bytes, a type code, the number of
# dimensions), one 4-byte size per dimension, then the raw values.
_IDX_TYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a NumPy array.

    The header is read and checked first; then exactly the bytes it announces are read (no more than
    ``$UNIMODEL_MAX_DATA_BYTES``, default 1 GiB), so a file that claims or holds too much is refused
    before it is decompressed. Raises ``ValueError`` with the file name when the header or the size of
    the payload is wrong, so a truncated download is caught, not half-read.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            start = f.read(4)
            if len(start) < 4 or start[0] != 0 or start[1] != 0 or start[2] not in _IDX_TYPES:
                raise ValueError(f"{path}: not an IDX file (bad magic number)")
            dtype, ndim = np.dtype(_IDX_TYPES[start[2]]), start[3]
            sizes = f.read(4 * ndim)
            if len(sizes) < 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header")
            shape = struct.unpack(f">{ndim}I", sizes)
            expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
            largest = limit(DATA_BYTES)
            if expected > largest:
                raise ValueError(
                    f"{path}: its header announces {expected} bytes of data (shape {shape}), more than the "
                    f"{largest} allowed; raise ${DATA_BYTES[0]} if that is what the file holds"
                )
            raw = f.read(expected + 1)  # one byte more: a longer payload is as wrong as a shorter one
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:  # a cut-off or damaged .gz download
        raise ValueError(f"{path}: truncated or damaged gzip file ({error})") from None
    if len(raw) != expected:
        sizes = f"{expected + 1} or more" if len(raw) > expected else str(len(raw))
        raise ValueError(f"{path}: IDX payload has {sizes} bytes, shape {shape} needs {expected}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_digit_png(image: np.ndarray, path: str | Path, scale: int = 16) -> None:
    """One 8x8 digit, (64,) in [0, 1], as a grayscale PNG with dark ink on white, each pixel a ``scale`` x ``scale`` square."""
    from PIL import Image

    from unimodel.checkpoint import atomic_write

    side = DIGIT_SIDE * scale
    gray = np.rint(255 * (1 - np.clip(image, 0, 1).reshape(DIGIT_SIDE, DIGIT_SIDE))).astype(np.uint8)
    picture = Image.fromarray(gray, mode="L").resize((side, side), Image.Resampling.NEAREST)
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


def read_digit_png(path: str | Path) -> torch.Tensor:
    """A picture of one digit that fills it, as the 8x8 digits' pixels, (64,) int64 in 0..16.

    Any size and colour: it is made gray, shrunk to 8x8 by averaging, turned
    so that the ink is bright (the digits' convention) when the background is
    light, and stretched so that the darkest pixel is 0 and the brightest 16.
    """
    from PIL import Image, UnidentifiedImageError

    largest, pillows = limit(IMAGE_PIXELS), Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = largest  # Pillow's own check, at its open(), then refuses what our limit refuses
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # below the limit: a large photo, not a bomb
            with Image.open(path) as picture:  # reads the header only
                width, height = picture.size
                if width * height > largest:
                    raise Image.DecompressionBombError(f"{width}x{height}")
                gray = picture.convert("L").resize((DIGIT_SIDE, DIGIT_SIDE), Image.Resampling.BOX)
    except Image.DecompressionBombError:
        raise ValueError(f"{path} claims more than the {largest} pixels allowed; raise ${IMAGE_PIXELS[0]} if the picture really is that large") from None
    except (FileNotFoundError, UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read {path} as an image ({error})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillows
    pixels = np.asarray(gray, dtype=np.float64) / 255.0
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 0.5:  # a light background: dark ink, as drawn on paper
        pixels = 1.0 - pixels
    low, high = pixels.min(), pixels.max()
    if high - low < 1e-6:
        raise ValueError(f"{path} is a blank image: it has no digit to read")
    levels = np.rint((pixels - low) / (high - low) * (DIGIT_LEVELS - 1)).astype(np.int64)
    return torch.from_numpy(levels.reshape(-1))


def quantize_to_digit_levels(images: np.ndarray) -> torch.Tensor:
    """Map 8-bit images (N, H, W) to the digits' 17 levels, flattened to (N, H*W)."""
    levels = np.rint(images.astype(np.float64) * (DIGIT_LEVELS - 1) / 255.0).astype(np.int64)
    return torch.from_numpy(levels.reshape(len(images), -1))  # (N, H*W)


MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise ValueError(f"{folder}: no {name} (or {name}.gz)")


def _check_values(values: np.ndarray, high: int, what: str) -> None:
    """Refuse values that are not whole numbers from 0 to ``high`` (MNIST's pixel bytes, its digits)."""
    if values.dtype == np.uint8 and high >= 255:
        return  # bytes cannot be out of range
    if not np.isfinite(values).all():
        raise ValueError(f"{what} must be whole numbers from 0 to {high}; some are NaN or infinite")
    if values.size and not (values.min() >= 0 and values.max() <= high and (values == np.rint(values)).all()):
        raise ValueError(f"{what} must be whole numbers from 0 to {high}; these run from {values.min()} to {values.max()}")


def idx_splits(folder: str | Path, val_size: int = 10_000) -> Splits:
    """MNIST-style files in ``folder`` (plain or .gz), in the layout of the digits protocol.

    Train is the train file without its last ``val_size`` images, validation
    is those, test is the t10k file; pixels are quantized to the 17 levels
    of the 8x8 digits, so every model here reads them unchanged.
    """
    folder = Path(folder)
    parts = {}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images, labels = read_idx(_find(folder, images_name)), read_idx(_find(folder, labels_name))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match")
        _check_values(images, 255, f"{folder}: {split} pixels")
        _check_values(labels, 9, f"{folder}: {split} labels")
        parts[split] = (quantize_to_digit_levels(images), torch.from_numpy(labels.astype(np.int64)))
    (x, y), (x_test, y_test) = parts["train"], parts["test"]
    if not 0 < val_size < len(x):
        raise ValueError(f"{folder}: {len(x)} training images leave none for training or validation (val_size={val_size})")
    end = len(x) - val_size
    return Splits(train=Split(x[:end], y[:end]), val=Split(x[end:], y[end:]), test=Split(x_test, y_test))


def mixture_splits(name: str) -> Splits:
    """100,000 training points of the ``ring`` or ``grid`` mixture, 2500 for validation and for test, drawn with fixed seeds."""
    mixture = MIXTURES[name]
    train, val, test = (Split(*mixture.sample(n, torch.Generator().manual_seed(seed))) for seed, n in enumerate((TRAIN_SIZE, EVAL_SIZE, EVAL_SIZE)))
    return Splits(train, val, test, mixture)


DATASETS = ("digits", *MIXTURES)  # the data sets known by name; anything else is a folder of IDX files


def load_splits(source: str = "digits") -> Splits:
    """``"digits"`` for scikit-learn's 8x8 digits, ``"ring"`` or ``"grid"`` for 2-D mixtures, else a folder of MNIST-style IDX files."""
    if source == "digits":
        return digits_splits()
    return mixture_splits(source) if source in MIXTURES else idx_splits(source)
