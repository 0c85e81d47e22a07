"""Publishing a built cache and restoring it: only what this code would compute, only what the archive vouches for."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import pickle
import tarfile
import threading
from pathlib import Path

import pytest

from unimodel.cli import main
from unimodel.figures import registry
from unimodel.website import build, publish

SMALL = ("unimodel.chapters.vae", "unimodel.chapters.clip")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A quick build of two chapters, exported with its runs."""
    folder = tmp_path_factory.mktemp("published")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UNIMODEL_PROFILE", "quick")
        patch.setenv("UNIMODEL_CACHE", str(folder / "cache"))
        manifest = build.build(jobs=1, chapters=SMALL)
        counts = publish.export_cache(folder / "site-cache.tar.gz")
    return folder, manifest, counts


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.parts[-2] != "locks"}


def test_an_export_holds_the_build_and_slim_runs(archive):
    folder, manifest, counts = archive
    runs = len(registry.chapter_runs(SMALL[0])) + len(registry.chapter_runs(SMALL[1]))
    assert counts["runs"] == 2 * runs  # each run's checkpoint and its done marker
    assert counts["models"] == sum(item.module in SMALL for item in registry.EXPORTS.values()) > 0
    assert counts["results"] == sum(item.module in SMALL for item in registry.RESULTS.values()) and counts["figures"] == 2 * sum(
        item.module in SMALL for item in registry.FIGURES.values()
    )
    with tarfile.open(folder / "site-cache.tar.gz") as tar:
        listed = json.loads(tar.extractfile(publish.MANIFEST).read())["files"]
        checkpoint = next(name for name in listed if name.endswith("checkpoint.pt"))
        slim = tar.extractfile(checkpoint).read()
    original = (folder / "cache" / checkpoint).read_bytes()
    assert len(slim) < len(original) / 2  # no optimizer state, one copy of the weights


def test_a_restored_cache_builds_without_computing_anything(archive, fresh, monkeypatch):
    folder, manifest, _ = archive
    counts = publish.restore_cache(str(folder / "site-cache.tar.gz"))
    assert counts["restored"] > 0 and counts["ignored"] == 0 and counts["libraries_match"]
    assert all(task.cached for task in build.plan(chapters=SMALL))
    rebuilt = build.build(jobs=1, chapters=SMALL)
    assert rebuilt["results"] == manifest["results"]
    for lang, figures in rebuilt["figures"].items():
        for name, png in figures.items():
            assert Path(png).read_bytes() == Path(manifest["figures"][lang][name]).read_bytes()
    timings = json.loads((fresh / build.TIMINGS).read_text())["quick"]
    assert timings == json.loads((folder / "cache" / build.TIMINGS).read_text())["quick"]  # nothing was computed again
    again = publish.restore_cache(str(folder / "site-cache.tar.gz"))
    assert again["restored"] == 0 and again["present"] == counts["restored"]  # never overwritten


def _repacked(source: Path, out: Path, change) -> Path:
    """A copy of the archive ``source`` with ``change(files, digests)`` applied to its members."""
    with tarfile.open(source) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    manifest = json.loads(files.pop(publish.MANIFEST))
    change(files, manifest["files"])
    with tarfile.open(out, "w:gz") as tar:
        for name, data in [(publish.MANIFEST, json.dumps(manifest).encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def test_entries_other_code_would_not_read_are_ignored(archive, fresh, tmp_path):
    folder, _, _ = archive

    def add_strangers(files, digests):
        for name, data in {"results/vae-vqvae-scores-00000000000000000000.json": b"{}", "../outside.json": b"{}", "runs/abc/evil.py": b"print(1)"}.items():
            files[name] = data
            digests[name] = hashlib.sha256(data).hexdigest()

    counts = publish.restore_cache(str(_repacked(folder / "site-cache.tar.gz", tmp_path / "strangers.tar.gz", add_strangers)))
    assert counts["ignored"] == 3
    assert not (tmp_path / "outside.json").exists() and not (fresh / "runs" / "abc").exists()
    assert not (fresh / "results" / "vae-vqvae-scores-00000000000000000000.json").exists()


def test_a_damaged_or_forged_entry_restores_nothing_past_it(archive, fresh, tmp_path):
    folder, _, _ = archive

    def damage(files, digests):
        name = next(n for n in files if n.startswith("results/"))
        files[name] = b'{"forged": 1}'

    with pytest.raises(publish.ArchiveError, match="SHA-256 differs"):
        publish.restore_cache(str(_repacked(folder / "site-cache.tar.gz", tmp_path / "damaged.tar.gz", damage)))

    class Payload:
        def __reduce__(self):
            return (print, ("this would run on load",))

    def forge(files, digests):
        name = next(n for n in files if n.endswith("checkpoint.pt"))
        files[name] = pickle.dumps(Payload())
        digests[name] = hashlib.sha256(files[name]).hexdigest()

    with pytest.raises(publish.ArchiveError, match=r"checkpoint\.pt"):
        publish.restore_cache(str(_repacked(folder / "site-cache.tar.gz", tmp_path / "forged.tar.gz", forge)))


def test_the_cli_says_what_it_restored_and_refuses_what_is_no_archive(archive, fresh, tmp_path, capsys):
    folder, _, _ = archive
    assert main(["cache", "restore", str(folder / "site-cache.tar.gz")]) == 0
    assert "restored" in capsys.readouterr().err
    (tmp_path / "not.tar.gz").write_bytes(b"hello")
    with pytest.raises(SystemExit) as stop:
        main(["cache", "restore", str(tmp_path / "not.tar.gz")])
    assert stop.value.code == 1 and "nothing restored: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["cache", "restore", str(tmp_path / "missing.tar.gz")])
    assert "no archive at" in capsys.readouterr().err
    assert main(["cache", "export", str(tmp_path / "out.zip")]) == 2
    assert "must end in .tar.gz" in capsys.readouterr().err


def test_an_archive_restores_from_a_url(archive, fresh):
    folder, _, _ = archive
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        counts = publish.restore_cache(f"http://127.0.0.1:{server.server_address[1]}/site-cache.tar.gz")
        assert counts["restored"] > 0
        with pytest.raises(publish.ArchiveError, match="could not download"):
            publish.restore_cache(f"http://127.0.0.1:{server.server_address[1]}/missing.tar.gz")
    finally:
        server.shutdown()
        server.server_close()
