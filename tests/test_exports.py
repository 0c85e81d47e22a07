"""The models pages run in the browser: exported to ONNX, checked against PyTorch, or the build fails."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from torch import nn

from unimodel.figures import registry
from unimodel.website import build, exports, publish
from unimodel.website.exports import Export, ExportError


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(3, 4)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.layer(z))


def _tiny_export(**changes) -> Export:
    settings = {
        "model": _Tiny(),
        "call": lambda m, z: m.decode(z),
        "inputs": {"z": torch.tensor([[0.5, -1.0, 2.0]])},
        "outputs": ("image",),
        "meta": {"levels": 17},
    }
    return Export(**{**settings, **changes})


def test_an_export_is_checked_against_pytorch_and_carries_its_card() -> None:
    data, card = exports.to_onnx(_tiny_export())
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    assert model.ir_version <= exports.IR_VERSION
    assert {(entry.domain, entry.version) for entry in model.opset_import} >= {("", exports.OPSET)}
    stored = json.loads(next(entry.value for entry in model.metadata_props if entry.key == exports.CARD))
    assert stored == card and card["meta"] == {"levels": 17}
    expected = _Tiny().decode(torch.tensor([[0.5, -1.0, 2.0]]))
    assert card["outputs"]["image"]["shape"] == [1, 4]
    assert card["outputs"]["image"]["data"] == pytest.approx(expected.flatten().tolist(), abs=1e-6)
    assert 0 <= card["max_difference"] <= exports.TOLERANCE["atol"]


def test_an_output_beyond_the_tolerance_fails_and_says_by_how_much() -> None:
    expected = {"image": {"shape": [1, 2], "data": [0.5, 0.25]}}
    assert exports.compare(expected, {"image": torch.tensor([[0.50005, 0.25]])}) == pytest.approx(5e-5, rel=1e-3)
    with pytest.raises(ExportError, match=r"'image' differs from PyTorch by 0\.001 at element 1"):
        exports.compare(expected, {"image": torch.tensor([[0.5, 0.251]])})
    with pytest.raises(ExportError, match="has shape"):
        exports.compare(expected, {"image": torch.zeros(2, 1)})


def test_a_file_newer_than_the_browser_reads_fails_the_export(monkeypatch) -> None:
    monkeypatch.setattr(exports, "IR_VERSION", 3)
    with pytest.raises(ExportError, match="ONNX Runtime Web reads at most 3"):
        exports.to_onnx(_tiny_export())


def test_outputs_and_their_names_must_agree() -> None:
    with pytest.raises(ExportError, match="gives 1 outputs, the export names 2"):
        exports.to_onnx(_tiny_export(outputs=("image", "extra")))


def test_every_export_comes_after_its_chapters_runs_and_is_named_after_its_page(quick) -> None:
    tasks = build.plan()
    by_id = {t.id: t for t in tasks}
    exported = [t for t in tasks if t.kind == "export"]
    assert {t.args[0] for t in exported} == set(registry.EXPORTS) >= {"vae/latent-2d", "vit/vit-2", "diffusion/digits"}
    for task in exported:
        module = registry.EXPORTS[task.args[0]].module
        runs = {f"run {spec.key}" for spec in registry.chapter_runs(module)}
        assert runs and runs <= set(task.needs), task.id
        assert all(by_id[need] in tasks[: tasks.index(task)] for need in task.needs)
        assert task.args[0].startswith(registry.page_of(module) + "/")


def test_an_export_is_keyed_by_the_versions_of_what_writes_it(quick, monkeypatch) -> None:
    from importlib import metadata

    before = registry.export_artifact("vae/latent-2d")
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "0.0" if name == "onnxscript" else real(name))
    assert registry.export_artifact("vae/latent-2d") != before


def test_the_published_cache_takes_an_exported_model_and_refuses_a_forged_one() -> None:
    data, _ = exports.to_onnx(_tiny_export())
    publish._check("models/vae--latent-2d-0123.onnx", data)
    with pytest.raises(publish.ArchiveError, match="not a valid ONNX model"):
        publish._check("models/vae--latent-2d-0123.onnx", b"not a model")
    bare = onnx.load_from_string(data)
    del bare.metadata_props[:]
    with pytest.raises(publish.ArchiveError, match="without its card"):
        publish._check("models/vae--latent-2d-0123.onnx", bare.SerializeToString())
