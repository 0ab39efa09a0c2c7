"""What the tests share besides fixtures: the demo business's fixed month, a notebook runner and a
writer of tiny test notebooks.

Test modules import these (``from support import run_notebook``); fixtures stay in ``conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from click.testing import CliRunner

from crm_helpers.cli import main
from crm_helpers.store.config import KERNEL_NAME, NOTEBOOKS_DIR
from crm_helpers.store.connection import open_db, table_counts
from crm_helpers.store.schema import RATES
from crm_helpers.report.runner import kernel_config

DEMO_END = "2026-10"
"""Fixed end month so that every test sees the same business, whatever today's date."""
DEMO_MONTH_START, DEMO_MONTH_END = "2026-10-01", "2026-10-31"


def run_notebook(name: str, out_dir: Path, **parameters: object) -> Path:
    """Execute ``notebooks/<name>`` with papermill into ``out_dir``; returns the executed path.

    Raises papermill's PapermillExecutionError if a cell fails.
    """
    import papermill as pm

    out = out_dir / name
    pm.execute_notebook(
        str(NOTEBOOKS_DIR / name),
        str(out),
        parameters=parameters,
        kernel_name=KERNEL_NAME,
        cwd=str(NOTEBOOKS_DIR),
        progress_bar=False,
        config=kernel_config(),
    )
    return out


def write_notebook(path: Path, *code: str, parameters: str) -> None:
    """Write a tiny notebook to ``path`` for the project's kernel: a title, the ``parameters`` cell
    (``parameters``, Python source) and one code cell per ``code``."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "CRM", "language": "python"}
    params = new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell("# Test"), params] + [new_code_cell(c) for c in code]
    nbformat.write(nb, str(path))


def stored_rows(db_path: Path) -> dict[str, list[dict]]:
    """Every row of every table of the store at ``db_path`` (exchange rates included), in key order."""
    db = open_db(db_path)
    return {t: [dict(r) for r in db.query(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in [*table_counts(db), RATES.name]}


def import_twice_unchanged(db_path: Path, fixture: Path, *, recognised_as: str) -> tuple[str, str]:
    """`crm import FILE` of ``fixture`` with no flags, twice: the first stores something and says
    the file was recognised as ``recognised_as``, the second changes nothing. Returns both outputs."""
    runner = CliRunner()
    first = runner.invoke(main, ["import", "--db", str(db_path), str(fixture)])
    assert first.exit_code == 0, first.output
    assert f"recognised as {recognised_as}" in first.output
    stored = stored_rows(db_path)
    assert sum(map(len, stored.values())) > 0
    again = runner.invoke(main, ["import", "--db", str(db_path), str(fixture)])
    assert again.exit_code == 0, again.output
    assert not any(f" {n} inserted" in again.output for n in range(1, 20))
    assert stored_rows(db_path) == stored
    return first.output, again.output
