"""The one-way road of docs/architecture.md, kept by import-linter's contracts in pyproject.toml:
nothing below the report layer imports it, ingest and analyses never import each other, models
never touch the store, analyses and models never draw (no matplotlib or seaborn), and the runner
and the share writer stay apart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint(package_parent: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True)


def test_the_layers_contracts_hold():
    result = _lint(ROOT / "src")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


def _lint_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of the package in which ``module`` (a path under crm_helpers/) gains ``line``."""
    shutil.copytree(ROOT / "src" / "crm_helpers", tmp_path / "crm_helpers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "crm_helpers" / module, "a", encoding="utf-8") as source:
        source.write(f"\n{line}\n")
    return _lint(tmp_path)


@pytest.mark.parametrize(("module", "line", "refusal"), [
    ("analyses/service.py", "from crm_helpers.report import headlines",
     "crm_helpers.analyses is not allowed to import crm_helpers.report"),
    ("ingest/inbox.py", "from crm_helpers.analyses import sales",
     "crm_helpers.ingest is not allowed to import crm_helpers.analyses"),
    ("analyses/sales.py", "from crm_helpers.ingest import inbox",
     "crm_helpers.analyses is not allowed to import crm_helpers.ingest"),
    ("models/btyd.py", "from crm_helpers.store import facts",
     "crm_helpers.models is not allowed to import crm_helpers.store"),
    ("store/facts.py", "from crm_helpers.analyses import sales",
     "crm_helpers.store is not allowed to import crm_helpers.analyses"),
    ("analyses/segmentation.py", "import matplotlib.pyplot as plt",
     "crm_helpers.analyses is not allowed to import matplotlib"),
    ("models/btyd.py", "import seaborn as sns",
     "crm_helpers.models is not allowed to import seaborn"),
])
def test_a_forbidden_import_breaks_the_contract(tmp_path, module, line, refusal):
    result = _lint_with(tmp_path, module, line)
    assert result.returncode != 0
    assert refusal in result.stdout
