"""The content-addressed cache: keys follow the code, artifacts are written atomically."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from unimodel import cache


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    """A private cache folder, and no fingerprint remembered from another test."""
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))
    cache.code_fingerprint.cache_clear()
    yield
    cache.code_fingerprint.cache_clear()


def _edited(monkeypatch, module: str, edit: str = "\nEDITED = 1\n") -> None:
    """Make the cache see ``module`` with ``edit`` appended (a line of code by default), as if it had been imported so."""
    real_source = cache.module_source

    def source(name: str) -> tuple[str, bool]:
        text, is_package = real_source(name)
        return (text + edit, is_package) if name == module else (text, is_package)

    monkeypatch.setattr(cache, "module_source", source)
    cache.code_fingerprint.cache_clear()


# ------------------------------------------------------------------ fingerprints


def test_fingerprint_is_stable_and_differs_between_modules():
    runs = cache.code_fingerprint("unimodel.runs")
    assert len(runs) == 64 and int(runs, 16) >= 0  # a sha256 hex digest
    assert cache.code_fingerprint("unimodel.runs") == runs
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint("unimodel.runs") == runs  # recomputed, not just remembered
    assert cache.code_fingerprint("unimodel.data") != runs
    assert cache.code_fingerprint("unimodel.training") not in (runs, cache.code_fingerprint("unimodel.data"))


def test_fingerprint_follows_the_unimodel_modules_a_module_imports(monkeypatch, tmp_path):
    before = {name: cache.code_fingerprint(name) for name in ("unimodel.runs", "unimodel.training", "unimodel.data", "unimodel.models.vae")}
    _edited(monkeypatch, "unimodel.training")
    after = {name: cache.code_fingerprint(name) for name in before}
    assert after["unimodel.training"] != before["unimodel.training"]  # its own source
    assert after["unimodel.runs"] != before["unimodel.runs"]  # runs imports training
    assert after["unimodel.data"] == before["unimodel.data"]  # data does not
    assert after["unimodel.models.vae"] == before["unimodel.models.vae"]  # nor does the VAE


def test_fingerprint_follows_imports_transitively(monkeypatch, tmp_path):
    before = cache.code_fingerprint("unimodel.runs")
    _edited(monkeypatch, "unimodel.runtime")  # runs -> training -> runtime (and runs -> runtime)
    assert cache.code_fingerprint("unimodel.runs") != before
    monkeypatch.undo()  # the edit reverted: the old key again
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint("unimodel.runs") == before


def test_fingerprint_ignores_modules_that_are_not_imported(monkeypatch, tmp_path):
    before = cache.code_fingerprint("unimodel.runs")
    _edited(monkeypatch, "unimodel.metrics")
    assert cache.code_fingerprint("unimodel.runs") == before
    assert cache.code_fingerprint("unimodel.metrics") != before


def test_fingerprint_hashes_what_the_code_does_not_how_it_is_written(monkeypatch):
    before = cache.code_fingerprint("unimodel.runs")
    for edit in ("\n# a comment\n\n\n", '\ndef helper():\n    """A docstring."""\n    return 1\n'):
        _edited(monkeypatch, "unimodel.training", edit)
        with_edit = cache.code_fingerprint("unimodel.runs")
        monkeypatch.undo()
        cache.code_fingerprint.cache_clear()
        if "return" in edit:
            assert with_edit != before  # a new function is new behaviour
        else:
            assert with_edit == before  # comments and blank lines are not
    docstring_only = cache.meaning('def f(x):\n    """Old words."""\n    return x  # why\n')
    assert docstring_only == cache.meaning('def f(x):\n    """New words, more of them."""\n\n    return x\n')
    assert docstring_only == cache.meaning("def f(x):\n    return x\n")
    assert docstring_only != cache.meaning("def f(x):\n    return x + 1\n")
    assert cache.meaning('class C:\n    """Only a docstring."""\n') == cache.meaning("class C:\n    pass\n")


def test_editing_one_family_does_not_retrain_another(monkeypatch):
    """The unified model shares layers and captions with BLIP and CLIP, not their files."""
    unified = cache.code_fingerprint("unimodel.models.unified")
    for other in ("unimodel.models.blip", "unimodel.models.clip", "unimodel.models.vit"):
        _edited(monkeypatch, other)
        assert cache.code_fingerprint("unimodel.models.unified") == unified, other
        monkeypatch.undo()
        cache.code_fingerprint.cache_clear()
    for shared in ("unimodel.models.layers", "unimodel.models.captions"):
        _edited(monkeypatch, shared)
        assert cache.code_fingerprint("unimodel.models.unified") != unified, shared
        monkeypatch.undo()
        cache.code_fingerprint.cache_clear()


def test_a_module_edited_after_its_import_keeps_the_key_of_the_code_that_runs(tmp_path):
    """The fingerprint is the source Python imported, not the file on disk later (a fresh process on a copy of the package).

    The model file is edited after the chapters are imported and before the run trains: the run is
    stored under the key of the code that trained it, and only a fresh import keys it anew.
    """
    import unimodel

    package = tmp_path / "src" / "unimodel"
    shutil.copytree(Path(unimodel.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from unimodel import cache
        from unimodel.chapters import vae  # imports unimodel.models.vae
        model = Path(vae.__file__).parents[1] / "models" / "vae.py"
        assert str(model).startswith({str(package)!r}), model
        imported = cache.code_fingerprint("unimodel.models.vae")
        key = vae.spec("recommended").key
        cache.code_fingerprint.cache_clear()
        model.write_text(model.read_text() + "\\nEDITED = 1\\n")  # after the import, before the run is keyed again
        assert cache.code_fingerprint("unimodel.models.vae") == imported
        assert vae.spec("recommended").key == key
        vae.run("recommended")  # trains the imported code: stored under its key
        assert (cache.cache_dir() / "runs" / key / "done").exists(), sorted((cache.cache_dir() / "runs").iterdir())
        print(key)
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "UNIMODEL_PROFILE": "quick", "UNIMODEL_CACHE": str(tmp_path / "cache")}
    old_key = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True).stdout.strip()
    new_key = subprocess.run(
        [sys.executable, "-c", "from unimodel.chapters import vae; print(vae.spec('recommended').key)"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert len(old_key) == 20 and new_key != old_key  # a fresh import of the edited code keys it anew


def test_unimodel_imports_resolves_relative_and_absolute_imports():
    source = "\n".join(
        [
            "import os, unimodel.data",
            "from numpy import array",
            "from .registry import FIGURES",
            "from . import style",
            "from ..models import vae",
            "from unimodel.checkpoint import atomic_write",
            "def later():",
            "    from unimodel import runs",
        ]
    )
    found = cache.unimodel_imports("unimodel.figures.vae", source, is_package=False)  # a module of that name, for its relative imports
    assert found == {
        "unimodel",
        "unimodel.data",
        "unimodel.figures",
        "unimodel.figures.registry",
        "unimodel.figures.style",
        "unimodel.models",
        "unimodel.models.vae",
        "unimodel.checkpoint",
        "unimodel.runs",
    }


def test_artifact_key_depends_on_arguments_and_is_stable():
    key = cache.artifact_key("unimodel.data", "digits", {"a": 1, "b": [1, 2]})
    assert key == cache.artifact_key(("unimodel.data",), "digits", {"b": [1, 2], "a": 1})  # dict order does not matter
    assert key != cache.artifact_key("unimodel.data", "digits", {"a": 2, "b": [1, 2]})
    assert key != cache.artifact_key(("unimodel.data", "unimodel.runs"), "digits", {"a": 1, "b": [1, 2]})
    assert len(key) == 20


def test_artifact_key_depends_on_library_versions(monkeypatch):
    key = cache.artifact_key("unimodel.data", 1)
    monkeypatch.setattr(cache, "library_versions", lambda: "torch=0.0")
    assert cache.artifact_key("unimodel.data", 1) != key


# ------------------------------------------------------------------ artifacts


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    assert cache.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("UNIMODEL_CACHE")
    assert str(cache.cache_dir()) == ".cache"


def test_cached_json_computes_once(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"nll": 88.5, "k": 5000, "per_class": [1.0, 2.0]}

    first = cache.cached_json("tables", "abc", compute)
    second = cache.cached_json("tables", "abc", compute)
    assert len(calls) == 1
    assert first == second == {"nll": 88.5, "k": 5000, "per_class": [1.0, 2.0]}
    stored = tmp_path / "cache" / "tables" / "abc.json"
    assert json.loads(stored.read_text(encoding="utf-8")) == first
    cache.cached_json("tables", "other", compute)  # another key: computed again
    assert len(calls) == 2


def test_cached_path_is_atomic_when_produce_fails(tmp_path):
    attempts = []

    def failing(tmp):
        attempts.append(tmp)
        with open(tmp, "w") as f:
            f.write("half a fig")
        raise RuntimeError("the figure crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        cache.cached_path("figures", "k1", ".png", failing)
    folder = tmp_path / "cache" / "figures"
    assert list(folder.iterdir()) == []  # neither the artifact nor a temporary file

    def working(tmp):
        attempts.append(tmp)
        with open(tmp, "w") as f:
            f.write("a whole fig")

    path = cache.cached_path("figures", "k1", ".png", working)  # recomputed, not served half-written
    assert path == folder / "k1.png" and path.read_text() == "a whole fig"
    assert len(attempts) == 2
    assert cache.cached_path("figures", "k1", ".png", failing) == path  # a hit: produce not called
    assert len(attempts) == 2
    assert [p.name for p in folder.iterdir()] == ["k1.png"]


def test_adding_a_model_retrains_no_other(tmp_path):
    """A new recipe file registers a model without changing the key of any run of the models there before.

    Every recipe imports ``unimodel.recipes``, so a list of the models written there would be code that
    every run's key hashes. Two fresh processes on a copy of the package, before and after a recipe is added.
    """
    import unimodel

    package = tmp_path / "src" / "unimodel"
    shutil.copytree(Path(unimodel.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    script = textwrap.dedent("""
        import json
        from unimodel.recipes import MODELS
        from unimodel.runs import RunSpec
        from unimodel.training import TrainConfig
        keys = {name: RunSpec(name, {}, TrainConfig(epochs=1)).key for name in MODELS if name != "extra"}
        print(json.dumps({"models": sorted(MODELS), "keys": keys}))
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "UNIMODEL_PROFILE": "quick"}

    def keys() -> dict:
        return json.loads(subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True).stdout)

    before = keys()
    shutil.copy(package / "recipes" / "vae.py", package / "recipes" / "extra.py")
    after = keys()
    assert "extra" not in before["models"] and after["models"] == sorted([*before["models"], "extra"])
    assert after["keys"] == before["keys"]
