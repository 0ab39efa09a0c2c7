"""Notebooks are committed clean: no outputs, a tagged parameters cell, readable structure."""

from __future__ import annotations

import re

import nbformat
import pytest

from crm_helpers.store.config import KERNEL_NAME, NOTEBOOKS_DIR
from crm_helpers.report.runner import NOT_IN_PACK, STANDARD_PARAMETERS, declared_parameters

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name}: strip outputs before committing"
            assert cell.execution_count is None, f"{path.name}: strip execution counts"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_is_tagged_and_plain(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    params = declared_parameters(path)
    standard = STANDARD_PARAMETERS[:1] if path.name.startswith(NOT_IN_PACK) else STANDARD_PARAMETERS[:3]
    for name in standard:
        assert name in params, f"{path.name}: parameter {name} missing"
    assert nb.metadata["kernelspec"]["name"] == KERNEL_NAME


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_reads_top_to_bottom(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "title first"
    headings = [c for c in nb.cells if c.cell_type == "markdown" and c.source.lstrip().startswith("## ")]
    assert headings, f"{path.name}: no sections"
    for cell in headings:
        lines = [ln for ln in cell.source.splitlines() if ln.strip()]
        assert len(lines) >= 2, f"{path.name}: section {lines[0]!r} needs a sentence saying what it shows"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "class " not in cell.source, f"{path.name}: classes belong in the package"
            assert len(cell.source.splitlines()) <= 25, f"{path.name}: a long cell belongs in the package"


PRINTED_WORDS = re.compile(r"""print\(\s*f?["'][^"'\n]*[A-Za-z]{2}""")
"""A printed sentence written in the notebook: it belongs in report/sentences.py, where the catalogue translates it."""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_printed_sentences_come_from_the_package(path):
    """A notebook prints what the package words (and translates); an English f-string stayed English in a Chinese pack."""
    nb = nbformat.read(path, as_version=4)
    printed = [m.group(0) for c in nb.cells if c.cell_type == "code" for m in PRINTED_WORDS.finditer(c.source)]
    assert not printed, f"{path.name}: {printed}"
