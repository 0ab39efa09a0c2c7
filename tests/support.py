"""What the tests share besides fixtures: the demo business's fixed month, a notebook runner and a
writer of tiny test notebooks.

Test modules import these (``from support import run_notebook``); fixtures stay in ``conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from crm_helpers.store.config import KERNEL_NAME, NOTEBOOKS_DIR
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
