"""Shared fixtures: one demo store per test session (its constants and the notebook runner are in
``support.py``, which test modules import)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crm_helpers.demo import DemoBusiness, generate_demo, write_demo
from crm_helpers.store.connection import open_db

from support import DEMO_END


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
