"""The shell entry points CI and the README call are valid scripts: a stray edit in `.ci/run` once
left it a syntax error, so CI failed in 4 s before running a single test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_ci_script_parses_and_ends_by_running_make_test():
    script = ROOT / ".ci" / "run"
    parsed = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr
    commands = [line.strip() for line in script.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "make test"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_makefile_knows_the_readme_targets():
    for target in ("report", "test", "desk", "bench"):
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert dry.returncode == 0, f"make -n {target}: {dry.stderr}"
