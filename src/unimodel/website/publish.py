"""A built cache, packed to publish and restored before a build: ``unimodel cache export|restore``.

The site's build publishes what it computed for the code at hand (figures,
results, the models exported for the browser, executed notebooks, the tasks' timings and, with ``runs=True``,
each run's best weights and history without its optimizer state; never
the entries older code left in the cache), so that a newcomer's first
build takes the time of a download instead of an hour of training.

Nothing in an archive is trusted. Restoring keeps only the entries whose
names the code at hand would ask for under the current profile (the keys
hash the code, so an archive made from other code simply does not match),
checks each against the archive's own list of SHA-256 digests, and checks
that it is what it claims to be: JSON that parses, a PNG, a notebook, a
checkpoint that loads with ``weights_only=True`` and holds a model of the
package. Every file is written atomically; what is already in the cache
is left as it is.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import torch

from unimodel import cache
from unimodel.checkpoint import CheckpointError, atomic_write, load_checkpoint

log = logging.getLogger(__name__)
MANIFEST = "unimodel-cache.json"
FORMAT = 1
KINDS = ("figures", "results", "models", "notebooks", "runs")
CHECKPOINT = "checkpoint.pt"


class ArchiveError(Exception):
    """The archive cannot be read, or is not one of ours: nothing was restored."""


def _members(folder: Path, runs: bool, notebooks) -> list[Path]:
    """The files of the cache that the code at hand reads (not those of older code), relative to it."""
    wanted = expected_files(notebooks)
    found = []
    for kind in KINDS:
        if kind == "runs" and not runs:
            continue
        for path in sorted((folder / kind).rglob("*")):
            rel = path.relative_to(folder)
            if not path.is_file() or rel.as_posix() not in wanted:
                continue
            if kind == "runs" and not (path.parent / "done").exists():  # an unfinished run is not published
                continue
            found.append(rel)
    if (folder / "timings.json").is_file():
        found.append(Path("timings.json"))
    return found


def _slim_checkpoint(path: Path) -> bytes:
    """A finished run's checkpoint without what only resuming needs (optimizer state, the last weights)."""
    saved = load_checkpoint(path)
    slim = {key: saved[key] for key in ("meta", "train_config", "best_state", "loop") if key in saved}
    slim["model_state"] = saved["best_state"]  # a finished run is never resumed: its last weights are not needed
    buffer = io.BytesIO()
    torch.save(slim, buffer)
    return buffer.getvalue()


def export_cache(out: str | Path, runs: bool = True, notebooks=()) -> dict:
    """Pack into the tar.gz ``out`` what the cache holds for the code at hand (and ``notebooks``); counts and bytes as a dict."""
    folder = cache.cache_dir()
    if not folder.is_dir():
        raise ArchiveError(f"there is no cache at {folder} to export: build the site first")
    entries, blobs = {}, {}
    for rel in _members(folder, runs, notebooks):
        data = _slim_checkpoint(folder / rel) if rel.name == CHECKPOINT else (folder / rel).read_bytes()
        entries[rel.as_posix()] = hashlib.sha256(data).hexdigest()
        blobs[rel.as_posix()] = data
    manifest = {"format": FORMAT, "libraries": cache.library_versions(), "files": entries}

    def write(tmp: str) -> None:
        with tarfile.open(tmp, "w:gz") as archive:
            for name, data in [(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode()), *blobs.items()]:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))

    atomic_write(out, write)
    counts = {kind: sum(name.startswith(kind + "/") for name in entries) for kind in KINDS}
    return {"archive": str(out), "bytes": Path(out).stat().st_size, "files": len(entries), **counts}


def _fetch(source: str) -> Path:
    """A local path to the archive ``source`` (a file, or an http(s) URL downloaded to a temporary file)."""
    if source.startswith(("http://", "https://")):
        handle, tmp = tempfile.mkstemp(prefix="unimodel-cache-", suffix=".tar.gz")
        try:
            with urllib.request.urlopen(source, timeout=60) as response, open(handle, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
        except OSError as error:
            Path(tmp).unlink(missing_ok=True)
            raise ArchiveError(f"could not download {source}: {error}") from None
        return Path(tmp)
    path = Path(source)
    if not path.is_file():
        raise ArchiveError(f"no archive at {source}")
    return path


def expected_files(notebooks=()) -> set[str]:
    """The cache files (relative paths) that the code at hand reads under the current profile."""
    from unimodel.website import build

    wanted: set[str] = {"timings.json"}
    folder = cache.cache_dir()
    for task in build.plan(notebooks):
        files = (task.path / CHECKPOINT, task.path / "done") if task.kind == "run" else (task.path,)
        wanted |= {f.relative_to(folder).as_posix() for f in files}
    return wanted


def _check_onnx(data: bytes) -> None:
    """Raise ValueError unless ``data`` is an ONNX model that passes ONNX's checker and carries the card the build writes."""
    import onnx

    from unimodel.website.exports import CARD

    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as error:  # protobuf's DecodeError, onnx's ValidationError: neither is a ValueError
        raise ValueError(f"not a valid ONNX model ({type(error).__name__}: {error})") from None
    if CARD not in {entry.key for entry in model.metadata_props}:
        raise ValueError("an ONNX model without its card: not one the build exported")


def _check(name: str, data: bytes) -> None:
    """Raise ArchiveError unless ``data`` is the kind of file ``name`` says."""
    try:
        if name.endswith((".json", ".ipynb")):
            json.loads(data)
        elif name.endswith(".png"):
            if not data.startswith(b"\x89PNG\r\n\x1a\n"):
                raise ValueError("not a PNG")
        elif name.endswith("/" + CHECKPOINT):
            with tempfile.NamedTemporaryFile(suffix=".pt") as tmp:
                tmp.write(data)
                tmp.flush()
                saved = load_checkpoint(tmp.name)  # weights_only=True
            from unimodel.recipes import model_spec

            model_spec(saved["meta"]["model"])
        elif name.endswith(".onnx"):
            _check_onnx(data)
        elif name.endswith("/done"):
            pass
        else:
            raise ValueError("not a kind of file the cache holds")
    except (ValueError, KeyError, TypeError, CheckpointError) as error:
        raise ArchiveError(f"{name}: {error}") from None


def restore_cache(source: str, notebooks=()) -> dict:
    """Restore from the archive ``source`` the entries the code at hand would read; counts of what was done."""
    cache.writable_cache_dir()  # refused before a download
    path = _fetch(source)
    try:
        try:
            archive = tarfile.open(path, "r:gz")  # noqa: SIM115 - opened here to name its error, closed by the `with` below
        except (tarfile.TarError, OSError) as error:
            raise ArchiveError(f"{source} is not a tar.gz archive ({error})") from None
        with archive:
            try:
                manifest = json.loads(archive.extractfile(MANIFEST).read())
            except (KeyError, AttributeError, ValueError):
                raise ArchiveError(f"{source} holds no {MANIFEST}: not a unimodel cache archive") from None
            if manifest.get("format") != FORMAT:
                raise ArchiveError(f"{source} is in format {manifest.get('format')!r}; this version reads format {FORMAT}")
            digests = manifest.get("files", {})
            wanted = expected_files(notebooks)
            folder = cache.cache_dir()
            counts = {"restored": 0, "present": 0, "ignored": 0}
            for member in archive.getmembers():
                name = member.name
                if name == MANIFEST:
                    continue
                if not member.isfile() or name not in digests or name not in wanted:
                    counts["ignored"] += 1  # other code's entry, or something the archive does not vouch for
                    continue
                data = archive.extractfile(member).read()
                if hashlib.sha256(data).hexdigest() != digests[name]:
                    raise ArchiveError(f"{name}: its SHA-256 differs from the archive's list: the archive is damaged")
                _check(name, data)
                target = folder / name
                if name == "timings.json":
                    _merge_timings(target, json.loads(data))
                    continue
                if target.exists():
                    counts["present"] += 1
                    continue
                atomic_write(target, lambda tmp, data=data: Path(tmp).write_bytes(data))
                counts["restored"] += 1
    finally:
        if path != Path(source):
            path.unlink(missing_ok=True)
    counts["libraries_match"] = manifest.get("libraries") == cache.library_versions()
    return counts


def _merge_timings(target: Path, published: dict) -> None:
    """Add the published tasks' times to the local ones (local times win)."""
    with cache.exclusive(target):
        try:
            local = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            local = {}
        merged = {profile: {**times, **local.get(profile, {})} for profile, times in published.items()}
        merged.update({profile: times for profile, times in local.items() if profile not in merged})
        atomic_write(target, lambda tmp: Path(tmp).write_text(json.dumps(merged, indent=1, sort_keys=True), encoding="utf-8"))
