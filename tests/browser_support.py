"""What the browser tests share: Debian's Chromium, the flags it needs on this closed network, and
the small demo store both pages are tried on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"),
]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
"""Chromium's flags here: without the networking ones it tries Google's hosts, refused many at a time."""
CRM = str(Path(sys.executable).with_name("crm"))


def small_demo_store(root: Path) -> Path:
    """A demo store of 200 buyers over 14 months to October 2026 at ``root / "crm.db"``."""
    db = root / "crm.db"
    subprocess.run([CRM, "demo", "--db", str(db), "--customers", "200", "--months", "14", "--end", "2026-10"],
                   check=True, capture_output=True)
    return db
