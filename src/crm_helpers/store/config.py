"""Where things live. Every path the package uses comes from here.

Each folder can be overridden by an environment variable, so tests, cron jobs and a
second business on the same machine never need to edit code:

- ``CRM_HOME``: the project root (default: the folder holding ``notebooks/``)
- ``CRM_DB``: the SQLite store (default ``<root>/data/crm.db``)
- ``CRM_INBOX``: files waiting to be imported (default ``<root>/data/inbox``)
- ``CRM_REPORTS``: rendered report packs (default ``<root>/reports``)

and one setting of the pack itself:

- ``CRM_LANG``: the language of the report pack, ``en`` (default) or ``zh`` (Simplified
  Chinese); ``crm report --lang`` overrides it for one render (see :mod:`crm_helpers.i18n`)
"""

from __future__ import annotations

import os
from pathlib import Path

from crm_helpers.i18n import DEFAULT, check_language


def _find_root() -> Path:
    env = os.environ.get("CRM_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "notebooks").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd()


PROJECT_ROOT: Path = _find_root()
NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"
DATA_DIR: Path = PROJECT_ROOT / "data"


def default_db_path() -> Path:
    """The store path: ``$CRM_DB`` if set, else ``data/crm.db`` under the project root."""
    env = os.environ.get("CRM_DB")
    return Path(env).expanduser() if env else DATA_DIR / "crm.db"


def inbox_dir() -> Path:
    """Folder of files waiting to be imported: ``$CRM_INBOX`` or ``data/inbox``."""
    env = os.environ.get("CRM_INBOX")
    return Path(env).expanduser() if env else DATA_DIR / "inbox"


def backups_dir(db_path: Path) -> Path:
    """Where ``crm backup`` puts the backups of the store at ``db_path`` unless told otherwise:
    ``backups/`` beside the store."""
    return Path(db_path).parent / "backups"


def reports_dir() -> Path:
    """Folder of monthly report packs: ``$CRM_REPORTS`` or ``reports``."""
    env = os.environ.get("CRM_REPORTS")
    return Path(env).expanduser() if env else PROJECT_ROOT / "reports"


def report_language() -> str:
    """The pack's language: ``$CRM_LANG`` as a short code (``zh``), else English; raises
    :class:`crm_helpers.i18n.LanguageError` for a language the pack has no catalogue for."""
    return check_language(os.environ.get("CRM_LANG") or DEFAULT)


KERNEL_NAME = "crm-workbook"
"""Name of the Jupyter kernel registered inside ``.venv`` (see the Makefile)."""


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a page shows it: relative to the project root when inside it (``data/inbox``), else
    its name only (``crm.db``), so that no page shows the owner's folders or user name."""
    resolved = Path(path).expanduser().resolve()
    if resolved.is_relative_to(PROJECT_ROOT):
        return resolved.relative_to(PROJECT_ROOT).as_posix() or "."
    return resolved.name
