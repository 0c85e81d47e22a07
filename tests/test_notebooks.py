"""The notebook executor: the quick profile's budgets are injected after the parameters cell, and keyed."""

from __future__ import annotations

import nbformat
import pytest

from unimodel.website import notebooks


def _notebook(tmp_path, quick=None, tagged=1):
    cells = [nbformat.v4.new_code_cell("EPOCHS = 300", metadata={"tags": ["parameters"]}) for _ in range(tagged)]
    cells.append(nbformat.v4.new_code_cell("print(EPOCHS)"))
    for i, cell in enumerate(cells):
        cell.id = f"cell{i}"
    notebook = nbformat.v4.new_notebook(cells=cells)
    if quick is not None:
        notebook.metadata["unimodel"] = {"quick": quick}
    path = tmp_path / "budget.ipynb"
    nbformat.write(notebook, path)
    return path


def test_the_quick_profile_injects_its_budgets_after_the_parameters_cell(tmp_path, monkeypatch):
    path = _notebook(tmp_path, quick={"EPOCHS": 3})
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    quick, quick_key = notebooks._read(path)
    assert [cell.source.splitlines()[-1] for cell in quick.cells] == ["EPOCHS = 300", "EPOCHS = 3", "print(EPOCHS)"]
    assert quick.cells[1].metadata["tags"] == ["injected-parameters"]
    assert notebooks._read(path)[1] == quick_key, "the injected cell must not change the key from one read to the next"
    monkeypatch.setenv("UNIMODEL_PROFILE", "full")
    full, full_key = notebooks._read(path)
    assert [cell.source for cell in full.cells] == ["EPOCHS = 300", "print(EPOCHS)"]
    assert full_key != quick_key


def test_a_notebook_without_quick_budgets_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    notebook, _ = notebooks._read(_notebook(tmp_path))
    assert len(notebook.cells) == 2


@pytest.mark.parametrize("tagged", [0, 2])
def test_quick_budgets_need_exactly_one_parameters_cell(tmp_path, monkeypatch, tagged):
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    with pytest.raises(ValueError, match="exactly one cell tagged 'parameters'"):
        notebooks._read(_notebook(tmp_path, quick={"EPOCHS": 3}, tagged=tagged))


def test_the_executed_notebook_runs_the_injected_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIMODEL_PROFILE", "quick")
    monkeypatch.setenv("UNIMODEL_CACHE", str(tmp_path / "cache"))
    executed = nbformat.read(notebooks.executed_notebook(_notebook(tmp_path, quick={"EPOCHS": 3})), as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "3\n"
