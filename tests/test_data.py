"""The digits split and the IDX reader."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from unimodel import data
from unimodel.data import DIGIT_LEVELS, digits_splits, quantize_to_digit_levels, read_idx


def test_digits_split_sizes_and_values():
    splits = digits_splits()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1000, 350, 447)
    for split in (splits.train, splits.val, splits.test):
        assert split.x.dtype == torch.int64 and split.x.shape[1] == 64
        assert split.y.dtype == torch.int64 and split.y.shape == (len(split),)
        assert split.x.min() >= 0 and split.x.max() <= DIGIT_LEVELS - 1
        assert torch.equal(split.x, split.x.round())
        assert set(split.y.tolist()) == set(range(10))
    assert splits.train.x.max() == 16 and splits.train.x.min() == 0


def test_digits_keep_scikit_learns_order():
    bunch = load_digits()
    splits = digits_splits()
    assert np.array_equal(splits.train.x[0].numpy(), bunch.data[0])
    assert np.array_equal(splits.val.x[0].numpy(), bunch.data[1000])
    assert np.array_equal(splits.test.x[0].numpy(), bunch.data[1350])
    assert np.array_equal(splits.test.x[-1].numpy(), bunch.data[-1])
    assert np.array_equal(torch.cat([splits.train.y, splits.val.y, splits.test.y]).numpy(), bunch.target)


def test_first_test_keeps_the_first_test_digits_and_nothing_else():
    splits = digits_splits()
    kept = splits.first_test(60)
    assert torch.equal(kept.test.x, splits.test.x[:60]) and torch.equal(kept.test.y, splits.test.y[:60])
    assert torch.equal(kept.train.x, splits.train.x) and torch.equal(kept.val.y, splits.val.y)
    for n in (0, len(splits.test) + 1):
        with pytest.raises(ValueError, match="test split has 447"):
            splits.first_test(n)


def test_the_quick_profile_scores_on_the_first_test_digits(monkeypatch):
    from unimodel.figures import registry

    monkeypatch.setenv("UNIMODEL_PROFILE", "full")
    assert len(registry.scored_splits().test) == 447
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    assert len(registry.scored_splits().test) == registry.QUICK_TEST < 447


# ------------------------------------------------------------------ IDX


def _idx_bytes(array: np.ndarray, type_code: int, big_endian_dtype: str | None = None) -> bytes:
    """An IDX file as MNIST's are written: 0, 0, type, ndim, sizes (big-endian), values (big-endian)."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    values = array.astype(big_endian_dtype) if big_endian_dtype else array
    return header + values.tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)  # (N, H, W)


@pytest.fixture
def labels():
    return np.arange(7, dtype=np.uint8) % 10  # (N,)


def test_read_idx_images_and_labels(tmp_path, images, labels):
    (tmp_path / "images-idx3-ubyte").write_bytes(_idx_bytes(images, 0x08))
    (tmp_path / "labels-idx1-ubyte").write_bytes(_idx_bytes(labels, 0x08))
    got_images = read_idx(tmp_path / "images-idx3-ubyte")
    got_labels = read_idx(str(tmp_path / "labels-idx1-ubyte"))
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 4, 3)
    assert np.array_equal(got_images, images)
    assert got_labels.shape == (7,) and np.array_equal(got_labels, labels)


def test_read_idx_gzip(tmp_path, images):
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(images, 0x08)))
    assert np.array_equal(read_idx(path), images)


def test_read_idx_big_endian_types(tmp_path):
    ints = np.array([[1, -2, 70000], [-(2**31), 2**31 - 1, 0]], dtype=np.int32)
    (tmp_path / "ints").write_bytes(_idx_bytes(ints, 0x0C, ">i4"))
    floats = np.array([0.5, -1.25, 3.0e10], dtype=np.float64)
    (tmp_path / "floats").write_bytes(_idx_bytes(floats, 0x0E, ">f8"))
    got = read_idx(tmp_path / "ints")
    assert np.array_equal(got, ints) and got.dtype.isnative
    got = read_idx(tmp_path / "floats")
    assert np.array_equal(got, floats) and got.dtype.isnative


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: bytes([1]) + raw[1:],  # first byte of the magic number
        lambda raw: raw[:2] + bytes([0x07]) + raw[3:],  # unknown type code
        lambda raw: b"\x1f\x8b" + raw[2:],  # looks like gzip, is not named .gz
        lambda raw: b"",
    ],
)
def test_read_idx_bad_magic_number(tmp_path, images, damage):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(damage(_idx_bytes(images, 0x08)))
    with pytest.raises(ValueError, match="bad magic number") as raised:
        read_idx(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("cut", [1, 10, 60])
def test_read_idx_truncated(tmp_path, images, cut):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(_idx_bytes(images, 0x08)[:-cut])
    with pytest.raises(ValueError, match=r"truncated|payload"):
        read_idx(path)


def test_read_idx_too_long_payload(tmp_path, labels):
    path = tmp_path / "long-idx1-ubyte"
    path.write_bytes(_idx_bytes(labels, 0x08) + b"\x00")
    with pytest.raises(ValueError, match="payload"):
        read_idx(path)


def test_read_idx_truncated_gzip(tmp_path, images):
    path = tmp_path / "short-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(images, 0x08)[:-5]))
    with pytest.raises(ValueError, match="payload"):
        read_idx(path)


def test_read_idx_cut_off_gzip_download(tmp_path):
    images = np.zeros((50, 28, 28), dtype=np.uint8)
    packed = gzip.compress(_idx_bytes(images, 0x08))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(packed[: len(packed) // 2])  # the download stopped half-way
    with pytest.raises(ValueError, match="truncated or damaged gzip") as raised:
        read_idx(path)
    assert str(path) in str(raised.value)


def test_read_idx_gz_name_without_gzip_content(tmp_path, images):
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(_idx_bytes(images, 0x08))  # not compressed, despite the name
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path)


# ------------------------------------------------------------------ levels


def test_quantize_to_digit_levels():
    images = np.array([[[0, 255], [128, 8]], [[247, 16], [120, 135]]], dtype=np.uint8)  # (N, H, W)
    levels = quantize_to_digit_levels(images)
    assert levels.dtype == torch.int64 and levels.shape == (2, 4)
    assert levels[0, 0] == 0 and levels[0, 1] == 16
    all_values = quantize_to_digit_levels(np.arange(256, dtype=np.uint8).reshape(1, 16, 16))
    assert all_values.min() == 0 and all_values.max() == 16
    assert set(all_values.flatten().tolist()) == set(range(DIGIT_LEVELS))
    assert torch.all(all_values.flatten().diff() >= 0)  # monotone
    torch.testing.assert_close(levels.double(), torch.from_numpy(images.reshape(2, 4).astype(np.float64) * 16 / 255).round(), rtol=0, atol=0)


def _write_idx(path, array, type_code):
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def _write_mnist(folder, n_train=30, n_test=12, side=6, gz=False):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for (images_name, labels_name), n in zip(data.MNIST_FILES.values(), (n_train, n_test), strict=True):
        _write_idx(folder / f"{images_name}{suffix}", rng.integers(0, 256, (n, side, side), dtype=np.uint8), 0x08)
        _write_idx(folder / f"{labels_name}{suffix}", rng.integers(0, 10, n, dtype=np.uint8), 0x08)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_splits_reads_an_mnist_folder(tmp_path, gz):
    _write_mnist(tmp_path, gz=gz)
    splits = data.idx_splits(tmp_path, val_size=10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (20, 10, 12)
    assert splits.train.x.shape == (20, 36) and splits.train.x.max() <= 16 and splits.train.x.min() >= 0


def test_idx_splits_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no train-images-idx3-ubyte"):
        data.idx_splits(tmp_path)
    _write_mnist(tmp_path, n_train=5)
    with pytest.raises(ValueError, match="leave none"):
        data.idx_splits(tmp_path, val_size=5)
