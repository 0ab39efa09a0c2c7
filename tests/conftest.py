"""Shared fixtures: one demo store per test session, and a notebook runner."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crm_helpers.config import KERNEL_NAME, NOTEBOOKS_DIR
from crm_helpers.report.runner import kernel_config
from crm_helpers.demo import DemoBusiness, generate_demo, write_demo
from crm_helpers.store import open_db

DEMO_END = "2026-10"
"""Fixed end month so that every test sees the same business, whatever today's date."""
DEMO_MONTH_START, DEMO_MONTH_END = "2026-10-01", "2026-10-31"


@pytest.fixture(scope="session")
def demo_business() -> DemoBusiness:
    """The default demo business (800 buyers, 24 months, seed 42), as DataFrames."""
    return generate_demo(customers=800, months=24, seed=42, end=DEMO_END)


@pytest.fixture(scope="session")
def demo_db_path(tmp_path_factory: pytest.TempPathFactory, demo_business: DemoBusiness) -> Path:
    """A store holding the default demo business. Treat it as read-only."""
    path = tmp_path_factory.mktemp("demo") / "crm.db"
    write_demo(open_db(path), demo_business)
    return path


@pytest.fixture
def demo_db_copy(demo_db_path: Path, tmp_path: Path) -> Path:
    """A private copy of the demo store, for tests that write (SQLite's backup API, so rows still
    in the WAL file come along)."""
    target = tmp_path / "crm-copy.db"
    src, dst = sqlite3.connect(str(demo_db_path)), sqlite3.connect(str(target))
    src.backup(dst)
    src.close()
    dst.close()
    return target


@pytest.fixture
def demo_db(demo_db_path: Path):
    """An open connection to the shared demo store (read-only by convention)."""
    return open_db(demo_db_path)


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
