"""What the tests share besides fixtures: the demo business's fixed month and a notebook runner.

Test modules import these (``from support import run_notebook``); fixtures stay in ``conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

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
