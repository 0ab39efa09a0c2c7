"""The one-way road of docs/architecture.md, kept by import-linter's contracts in pyproject.toml:
nothing below the report layer imports it, and the runner and the share writer stay apart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint(package_parent: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True)


def test_the_layers_contracts_hold():
    result = _lint(ROOT / "src")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 kept, 0 broken" in result.stdout


def test_an_analysis_importing_the_report_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "src" / "crm_helpers", tmp_path / "crm_helpers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "crm_helpers" / "service.py", "a", encoding="utf-8") as module:
        module.write("\nfrom .report import headlines  # an upward import\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "crm_helpers.service is not allowed to import crm_helpers.report" in result.stdout
