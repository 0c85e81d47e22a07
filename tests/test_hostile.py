"""Bad input of every kind ends in one line and exit status 2, and nothing a user had is lost.

One table holds a case per class of bad input (and the others found on the
way): runs and benches writing where a checkpoint is, input that would need
unbounded memory, numbers that pass a sign check and fail deep inside, data
values out of range, output paths the system refuses, resumes that would do
nothing. Each case asserts exit 2, one line on stderr, no traceback, the
checkpoint it could have touched byte for byte the same, and no folder left
behind. Then: two processes training into one folder, a resume that says what
it changes, and fuzzing of the IDX reader, the picture reader and the flags
of ``sample`` (Hypothesis).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import _error as _refused  # exit 2, one line on stderr, no traceback, nothing on stdout

from unimodel import data
from unimodel.checkpoint import load_checkpoint, save_checkpoint
from unimodel.cli import main
from unimodel.limits import MAX_SEED

TRAIN = ["train", "vae", "--hidden-dim", "16", "--batch-size", "128"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A VAE run of 2 epochs, trained once by the CLI; its folder (cases copy it before touching it)."""
    out = tmp_path_factory.mktemp("hostile") / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*TRAIN, "--epochs", "2", "--out", str(out)]) == 0
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _idx(path: Path, array: np.ndarray, type_code: int) -> None:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def _mnist(folder: Path, images: np.ndarray | None = None, type_code: int = 0x08, labels: np.ndarray | None = None) -> Path:
    """An MNIST-style folder of tiny files; ``images`` (and their IDX type) or ``labels`` replace the training ones."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 40), ("t10k", 8)):
        pictures = rng.integers(0, 256, (n, 4, 4), dtype=np.uint8)
        digits = rng.integers(0, 10, n, dtype=np.uint8)
        if split == "train" and images is not None:
            pictures = images
        if split == "train" and labels is not None:
            digits = labels
        _idx(folder / f"{split}-images-idx3-ubyte", pictures, type_code if split == "train" and images is not None else 0x08)
        _idx(folder / f"{split}-labels-idx1-ubyte", digits, 0x08)
    return folder


def _with_train_images(folder: Path, raw: bytes) -> Path:
    """An MNIST-style folder whose training images are the gzip ``raw``."""
    _mnist(folder)
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(raw)
    return folder


def _bomb(shape: tuple[int, ...], payload_bytes: int) -> bytes:
    """A gzip IDX file: a header announcing ``shape`` of bytes, then ``payload_bytes`` zeros (which compress to almost nothing)."""
    header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
    chunk = bytes(1 << 20)
    parts = [compressor.compress(header)]
    for start in range(0, payload_bytes, len(chunk)):
        parts.append(compressor.compress(chunk[: min(len(chunk), payload_bytes - start)]))
    return b"".join(parts) + compressor.flush()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG with a valid header (and CRC) for a ``width`` x ``height`` gray picture, and almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def _stopped_early(run: Path) -> None:
    """Mark the run in ``run`` as stopped early: its last 20 epochs (its patience) did not improve."""
    saved = load_checkpoint(run / "checkpoint.pt")
    saved["loop"].update(bad_epochs=saved["train_config"]["patience"], stopped_early=True)
    save_checkpoint(run / "checkpoint.pt", saved)


def _copy_of(trained: Path, where: Path) -> Path:
    where.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(trained, where)
    return where


# Each case: (id, class, argv with {run} (a copy of the trained run), {tmp} and {new} (a folder that must stay
# absent) filled in, a setup(tmp, run) run first, the words the error must contain).
CASES = [
    # one owner per run folder, and no checkpoint replaced
    ("train-over-a-checkpoint", "ownership", [*TRAIN, "--epochs", "1", "--out", "{run}"], None, "exists"),
    (
        "bench-taxonomy-over-a-checkpoint",
        "ownership",
        ["bench", "taxonomy", "--epochs", "1", "--out", "{tmp}/bench"],
        lambda tmp, run: shutil.copytree(run, tmp / "bench" / "pixelcnn-1epochs"),
        "exists",
    ),
    (
        "bench-gan2d-over-a-checkpoint",
        "ownership",
        ["bench", "gan2d", "--seeds", "0", "--out", "{tmp}/bench"],
        lambda tmp, run: shutil.copytree(run, tmp / "bench" / "ring-r1-seed0"),
        "exists",
    ),
    ("bench-gan2d-repeated-seed", "ownership", ["bench", "gan2d", "--seeds", "0", "0", "--out", "{new}"], None, "repeats a seed"),
    # bounded work for any input
    (
        "idx-header-announces-6-TB",
        "memory",
        [*TRAIN, "--data", "{tmp}/mnist", "--out", "{new}"],
        lambda tmp, run: _with_train_images(tmp / "mnist", _bomb((60000, 10000, 10000), 16)),
        "more than the",
    ),
    (
        "idx-gzip-holds-more-than-its-header",
        "memory",
        [*TRAIN, "--data", "{tmp}/mnist", "--out", "{new}"],
        lambda tmp, run: _with_train_images(tmp / "mnist", _bomb((40, 4, 4), 8 << 20)),
        "or more bytes",
    ),
    (
        "png-header-claims-10-gigapixels",
        "memory",
        ["caption", "{run}", "{tmp}/bomb.png"],
        lambda tmp, run: (tmp / "bomb.png").write_bytes(_png_claiming(100_000, 100_000)),
        "claims more than the",
    ),
    # numbers that pass a sign check and fail deep inside
    ("eval-k-a-trillion", "numbers", ["eval", "{run}", "--k", str(10**12)], None, "--k must be an integer from 1 to"),
    ("sample-n-a-trillion", "numbers", ["sample", "{run}", "--n", str(10**12), "--out", "{tmp}/x.npy"], None, "--n must be an integer from 1 to"),
    ("diffusion-steps-a-trillion", "numbers", ["train", "diffusion", "--steps", str(10**12), "--out", "{new}"], None, "steps must be an integer from 1 to"),
    ("taxonomy-steps-a-trillion", "numbers", ["bench", "taxonomy", "--steps", str(10**12)], None, "steps must be an integer from 1 to"),
    ("guidance-nan", "numbers", ["sample", "{run}", "--prompt", "七", "--guidance", "nan", "--out", "{tmp}/x.png"], None, "finite"),
    ("guidance-inf", "numbers", ["sample", "{run}", "--prompt", "七", "--guidance", "inf", "--out", "{tmp}/x.png"], None, "finite"),
    ("seed-beyond-64-bits", "numbers", ["sample", "{run}", "--seed", str(2**64), "--out", "{tmp}/x.npy"], None, f"from 0 to {MAX_SEED}"),
    ("seed-negative", "numbers", [*TRAIN, "--seed", "-1", "--out", "{new}"], None, f"from 0 to {MAX_SEED}"),
    ("lr-inf", "numbers", [*TRAIN, "--lr", "inf", "--out", "{new}"], None, "finite"),
    ("lr-nan", "numbers", [*TRAIN, "--lr", "nan", "--out", "{new}"], None, "finite"),
    ("kl-weight-inf", "numbers", [*TRAIN, "--kl-weight", "inf", "--out", "{new}"], None, "finite"),
    # data values
    (
        "pixels-above-255",
        "data",
        [*TRAIN, "--data", "{tmp}/mnist", "--out", "{new}"],
        lambda tmp, run: _mnist(tmp / "mnist", np.full((40, 4, 4), 300, dtype=np.int32), 0x0C),
        "from 300 to 300",
    ),
    (
        "pixels-negative",
        "data",
        [*TRAIN, "--data", "{tmp}/mnist", "--out", "{new}"],
        lambda tmp, run: _mnist(tmp / "mnist", np.full((40, 4, 4), -5, dtype=np.int8), 0x09),
        "from 0 to 255",
    ),
    (
        "pixels-nan",
        "data",
        [*TRAIN, "--data", "{tmp}/mnist", "--out", "{new}"],
        lambda tmp, run: _mnist(tmp / "mnist", np.full((40, 4, 4), np.nan, dtype=np.float32), 0x0D),
        "NaN",
    ),
    (
        "labels-above-9",
        "data",
        [*TRAIN, "--data", "{tmp}/mnist", "--out", "{new}"],
        lambda tmp, run: _mnist(tmp / "mnist", labels=np.full(40, 12, dtype=np.uint8)),
        "labels must be whole numbers from 0 to 9",
    ),
    # output paths and caches
    ("out-is-a-folder", "paths", ["sample", "{run}", "--out", "{tmp}/grid.png"], lambda tmp, run: (tmp / "grid.png").mkdir(), "is a folder"),
    ("out-name-too-long", "paths", ["sample", "{run}", "--out", "{tmp}/" + "x" * 240 + ".npy"], None, "name too long"),
    (
        "restore-into-a-cache-that-is-a-file",
        "paths",
        ["cache", "restore", "{tmp}/site.tar.gz"],
        lambda tmp, run: (tmp / "cache").write_text("a file"),
        "is a file, not a folder",
    ),
    ("build-into-a-cache-that-is-a-file", "paths", ["figures", "--json"], lambda tmp, run: (tmp / "cache").write_text("a file"), "is a file, not a folder"),
    # resume says what it does
    ("resume-to-fewer-epochs", "resume", [*TRAIN, "--resume", "--epochs", "1", "--out", "{run}"], None, "has trained 2 epochs already"),
    (
        "resume-a-run-that-stopped-early",
        "resume",
        [*TRAIN, "--resume", "--epochs", "9", "--out", "{run}"],
        lambda tmp, run: _stopped_early(run),
        "stopped early",
    ),
]


@pytest.mark.parametrize(("name", "kind", "argv", "setup", "words"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_in_one_line_and_loses_nothing(capsys, tmp_path, trained, name, kind, argv, setup, words):
    run = _copy_of(trained, tmp_path / "run")
    if setup:
        setup(tmp_path, run)
    before = _sha256(run / "checkpoint.pt")
    line = _refused(capsys, [a.format(run=run, tmp=tmp_path, new=tmp_path / "new") for a in argv])
    assert words in line, line
    assert _sha256(run / "checkpoint.pt") == before, "the checkpoint changed"
    assert not (tmp_path / "new").exists(), "a failed command left its --out folder behind"
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"


def test_every_class_of_bad_input_has_cases():
    kinds = {case[1] for case in CASES}
    assert kinds == {"ownership", "memory", "numbers", "data", "paths", "resume"}
    assert len(CASES) >= 25


def test_an_idx_file_is_read_in_bounded_memory(tmp_path):
    """The header is checked before decompressing: a 64 MB payload behind a header for 640 bytes is never held whole."""
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(_bomb((40, 4, 4), 64 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="or more bytes"):
            data.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"reading it held {peak} bytes"


def test_the_data_limit_can_be_raised(tmp_path, monkeypatch):
    path = tmp_path / "images-idx3-ubyte"
    _idx(path, np.zeros((40, 4, 4), dtype=np.uint8), 0x08)
    monkeypatch.setenv("UNIMODEL_MAX_DATA_BYTES", "100")
    with pytest.raises(ValueError, match="UNIMODEL_MAX_DATA_BYTES"):
        data.read_idx(path)
    monkeypatch.setenv("UNIMODEL_MAX_DATA_BYTES", "640")
    assert data.read_idx(path).shape == (40, 4, 4)
    monkeypatch.setenv("UNIMODEL_MAX_DATA_BYTES", "lots")
    with pytest.raises(ValueError, match="positive integer"):
        data.read_idx(path)


def test_a_large_real_picture_is_still_read(tmp_path):
    """The pixel limit stops claims, not photos: a 3000x2000 picture of a digit is read."""
    from PIL import Image

    picture = Image.new("L", (3000, 2000), 255)
    picture.paste(0, (1000, 500, 2000, 1500))
    picture.save(tmp_path / "photo.png")
    assert data.read_digit_png(tmp_path / "photo.png").shape == (64,)


def test_bench_rows_never_share_a_folder(tmp_path):
    from unimodel.experiments import taxonomy

    folders = taxonomy.run_folders(taxonomy.Budget(epochs=5, long_epochs=5), tmp_path)
    assert len(set(folders)) == len(folders) == len(taxonomy.ROWS)


def test_a_failed_training_leaves_no_folder(capsys, tmp_path):
    """The data is read after --out is checked: the folder made to check it is gone again."""
    _refused(capsys, [*TRAIN, "--data", _mnist(tmp_path / "mnist", labels=np.full(40, 12, dtype=np.uint8)), "--out", tmp_path / "a" / "b" / "run"])
    assert not (tmp_path / "a").exists()


def test_a_working_folder_that_is_gone_is_one_line(capsys, tmp_path, monkeypatch, trained):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    _refused(capsys, ["sample", trained, "--out", "relative.npy"])


def test_resume_says_what_changes_and_the_checkpoint_records_it(capsys, tmp_path, trained):
    run = _copy_of(trained, tmp_path / "run")
    assert main([*TRAIN, "--resume", "--epochs", "3", "--lr", "0.0005", "--out", str(run)]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "at epoch 3 of 3" in err and "lr 0.001 -> 0.0005" in err and "epochs 2 -> 3" in err
    segments = load_checkpoint(run / "checkpoint.pt")["loop"]["segments"]
    assert [s["from_epoch"] for s in segments] == [1, 3]
    assert (segments[0]["train_config"]["lr"], segments[1]["train_config"]["lr"]) == (0.001, 0.0005)


def test_resume_without_a_checkpoint_says_it_starts_afresh(capsys, tmp_path):
    assert main([*TRAIN, "--resume", "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert "no checkpoint" in capsys.readouterr().err
    assert [s["from_epoch"] for s in load_checkpoint(tmp_path / "run" / "checkpoint.pt")["loop"]["segments"]] == [1]


def _cli(*argv: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "unimodel.cli", *argv], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.distributed
def test_two_trainings_into_one_folder_one_is_refused_the_other_whole(tmp_path):
    out = tmp_path / "run"
    flags = [*TRAIN, "--epochs", "150", "--patience", "0", "--out", str(out)]
    first, second = _cli(*flags, cwd=tmp_path), _cli(*flags, cwd=tmp_path)
    results = [(*p.communicate(timeout=300), p.returncode) for p in (first, second)]
    results = [(code, out, err) for out, err, code in results]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    (refused,) = [err for code, _, err in results if code == 2]
    assert len(refused.splitlines()) == 1 and ("another process is training into" in refused or "exists" in refused), refused
    saved = load_checkpoint(out / "checkpoint.pt")
    assert saved["loop"]["epoch"] == 150 and len(saved["loop"]["history"]) == 150, "the run that was not refused is not whole"
    # a resume while another process trains into the folder is refused by the lock itself
    busy = _cli(*[*TRAIN, "--epochs", "400", "--patience", "0", "--resume", "--out", str(out)], cwd=tmp_path)
    try:
        deadline = os.stat(out / "checkpoint.pt").st_mtime
        while os.stat(out / "checkpoint.pt").st_mtime == deadline and busy.poll() is None:  # until it has written an epoch
            time.sleep(0.05)
        second = _cli(*[*TRAIN, "--epochs", "500", "--resume", "--out", str(out)], cwd=tmp_path)
        _, err = second.communicate(timeout=120)
        code = second.returncode
        assert code == 2 and "another process is training into" in err, err
    finally:
        busy.kill()
        busy.wait()


# ------------------------------------------------------------------ fuzzing

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=64), st.booleans())
def test_the_idx_reader_reads_or_refuses_any_bytes(tmp_path_factory, raw, gz):
    path = tmp_path_factory.mktemp("idx") / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with contextlib.suppress(ValueError):
        data.read_idx(path)


@FUZZ
@given(st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=4), st.sampled_from(sorted(data._IDX_TYPES)), st.binary(max_size=256))
def test_the_idx_reader_reads_or_refuses_any_header(tmp_path_factory, shape, type_code, payload):
    path = tmp_path_factory.mktemp("idx") / "f"
    path.write_bytes(bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload)
    try:
        array = data.read_idx(path)
    except ValueError:
        return
    assert array.shape == tuple(shape)


PNG = _png_claiming(8, 8)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=128),
        st.tuples(st.integers(0, len(PNG) - 1), st.binary(min_size=1, max_size=8)).map(lambda cut: PNG[: cut[0]] + cut[1] + PNG[cut[0] + len(cut[1]) :]),
    )
)
def test_the_picture_reader_reads_or_refuses_any_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("png") / "digit.png"
    path.write_bytes(raw)
    with contextlib.suppress(ValueError):
        assert data.read_digit_png(path).shape == (64,)


NUMBER_TEXT = st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=6))


@FUZZ
@given(n=NUMBER_TEXT, seed=NUMBER_TEXT)
def test_sample_takes_any_n_and_seed_or_refuses_them_in_one_line(capsys, tmp_path_factory, trained, n, seed):
    out = tmp_path_factory.mktemp("sample") / "x.npy"
    code = main(["sample", str(trained), "--n", n, "--seed", seed, "--out", str(out)])
    captured = capsys.readouterr()
    if code == 0:
        assert np.load(out).shape == (int(n), 64)
    else:
        assert code == 2 and len(captured.err.splitlines()) == 1 and "Traceback" not in captured.err, captured.err


def test_a_dead_writers_temporary_files_go_with_the_next_write_into_the_folder(tmp_path):
    from unimodel import checkpoint

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    pid = int(gone.stdout)  # a process that has exited
    dead = tmp_path / f".figure.png.{pid}@{checkpoint._HOST}.abcd1234.tmp"
    elsewhere = tmp_path / f".figure.png.{pid}@another-host.abcd1234.tmp"  # a shared folder: not this host's to judge
    alive = tmp_path / f".other.png.{os.getppid()}@{checkpoint._HOST}.abcd1234.tmp"
    for path in (dead, elsewhere, alive):
        path.write_bytes(b"half")
    checkpoint.atomic_write(tmp_path / "result.json", lambda tmp: Path(tmp).write_text("{}"))
    assert not dead.exists() and elsewhere.exists() and alive.exists()


def test_json_output_holds_no_nan_or_infinity(capsys, tmp_path):
    assert main(["train", "gan", "--dataset", "ring", "--epochs", "1", "--batch-size", "5000", "--out", str(tmp_path / "gan")]) == 0
    out = capsys.readouterr().out
    assert '"best_val": null' in out and "NaN" not in out and "Infinity" not in out


def test_a_folder_that_cannot_be_locked_trains_unguarded_and_says_so(tmp_path, monkeypatch, caplog):
    """Some network file systems refuse flock on a folder: the run goes on, with a warning, rather than fail."""
    import errno
    import fcntl

    from unimodel import checkpoint

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level("WARNING"), checkpoint.owned_folder(tmp_path / "run") as folder:
        (folder / "checkpoint.pt").write_bytes(b"x")
    assert "cannot be locked" in caplog.text and (tmp_path / "run" / "checkpoint.pt").exists()
