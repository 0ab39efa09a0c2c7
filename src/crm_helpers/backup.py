"""Backups of the store: safe while notebooks are open, verified, rotated, optionally encrypted.

``backup()`` copies the live store with SQLite's online backup API (a consistent snapshot even
while another process writes), checks the copy with ``PRAGMA integrity_check``, writes it with
owner-only permissions and keeps the newest ``keep`` backups. With a passphrase the copy is
encrypted (Fernet: AES-128-CBC + HMAC-SHA256, key derived from the passphrase with scrypt) by
the ``cryptography`` package. ``restore()`` verifies a backup before it replaces the store and
keeps the replaced file beside it.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from .store import SCHEMA_VERSION

MAGIC = b"CRMBAK1\n"
SALT_BYTES = 16
PARTIAL_PREFIX = ".crm-partial-"
"""Working folders of a backup or restore in progress: ``.crm-partial-<pid>-…``, removed when done."""


class BackupError(Exception):
    """A backup or restore could not be made or verified; nothing was replaced."""


def _key(passphrase: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    raw = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode("utf-8"))
    return base64.urlsafe_b64encode(raw)


def encrypt_bytes(data: bytes, passphrase: str) -> bytes:
    """``MAGIC + salt + Fernet token`` for ``data``."""
    from cryptography.fernet import Fernet

    salt = os.urandom(SALT_BYTES)
    return MAGIC + salt + Fernet(_key(passphrase, salt)).encrypt(data)


def decrypt_bytes(blob: bytes, passphrase: str) -> bytes:
    """The inverse of :func:`encrypt_bytes`; BackupError on a wrong passphrase or a damaged file."""
    from cryptography.fernet import Fernet, InvalidToken

    if not blob.startswith(MAGIC):
        raise BackupError("not an encrypted CRM backup")
    salt, token = blob[len(MAGIC):len(MAGIC) + SALT_BYTES], blob[len(MAGIC) + SALT_BYTES:]
    try:
        return Fernet(_key(passphrase, salt)).decrypt(token)
    except InvalidToken:
        raise BackupError("wrong passphrase, or the backup file is damaged") from None


def verify(path: Path, *, name: str | None = None) -> int:
    """Check that ``path`` is an intact CRM store; returns its schema version or raises BackupError.

    ``name`` is the file the messages name (default ``path.name``): the user's backup file, not
    the working copy it was unpacked to.
    """
    name = name or path.name
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            has_customers = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='customers'"
            ).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{name}: not a CRM backup: not a readable SQLite database ({exc})") from None
    if result != "ok":
        raise BackupError(f"{name}: integrity check failed: {result}")
    if not has_customers or not 1 <= version <= SCHEMA_VERSION:
        raise BackupError(f"{name}: not a CRM store (schema version {version})")
    return int(version)


def _partial_dir(folder: Path) -> tempfile.TemporaryDirectory[str]:
    """A private working folder in ``folder``; first removes those left by killed processes.

    A backup or restore killed mid-way (power cut, SIGKILL) cannot clean up after itself, and its
    working folder may hold a plaintext copy of the store even when the backup was to be
    encrypted: the next backup or restore removes it.
    """
    for stale in folder.glob(f"{PARTIAL_PREFIX}*"):
        pid = stale.name[len(PARTIAL_PREFIX):].split("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", dir=folder)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _snapshot(db_path: Path, dest: Path) -> None:
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(str(dest))
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode = DELETE")  # a backup is one self-contained file
    finally:
        target.close()
        source.close()


def backup(
    db_path: str | os.PathLike[str],
    to: str | os.PathLike[str] | None = None,
    *,
    keep: int = 10,
    passphrase: str | None = None,
    now: dt.datetime | None = None,
) -> Path:
    """Back up the store at ``db_path`` into the folder ``to`` (default ``<store folder>/backups``).

    Files are named ``crm-YYYYMMDD-HHMMSS.db`` (``.db.enc`` when encrypted). Only the newest
    ``keep`` backups of that folder are kept. Returns the new backup's path.
    """
    db_path = Path(db_path)
    if not db_path.exists():
        raise BackupError(f"{db_path}: no store to back up")
    folder = Path(to) if to else db_path.parent / "backups"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    final = folder / (f"crm-{stamp}.db" + (".enc" if passphrase else ""))
    old_umask = os.umask(0o077)
    try:
        with _partial_dir(folder) as tmp:
            copy = Path(tmp) / "snapshot.db"
            _snapshot(db_path, copy)
            verify(copy, name=db_path.name)
            if passphrase:
                (Path(tmp) / "snapshot.enc").write_bytes(encrypt_bytes(copy.read_bytes(), passphrase))
                copy = Path(tmp) / "snapshot.enc"
            os.chmod(copy, 0o600)
            os.replace(copy, final)
    except OSError as exc:
        raise BackupError(f"{final}: cannot write the backup: {exc.strerror or exc}") from None
    finally:
        os.umask(old_umask)
    _rotate(folder, keep)
    return final


def _rotate(folder: Path, keep: int) -> None:
    backups = sorted(p for p in folder.glob("crm-*.db*") if p.suffix in (".db", ".enc"))
    for old in backups[: max(len(backups) - keep, 0)]:
        old.unlink()


def restore(
    backup_file: str | os.PathLike[str], db_path: str | os.PathLike[str], *, passphrase: str | None = None
) -> Path | None:
    """Replace the store with a verified backup. Returns where the replaced store was kept (or None).

    The backup is decrypted (when encrypted) and checked before anything is touched; the current
    store is kept as ``crm.db.replaced-YYYYMMDD-HHMMSS``.
    """
    source, db_path = Path(backup_file), Path(db_path)
    if not source.exists():
        raise BackupError(f"{source}: no such backup")
    old_umask = os.umask(0o077)
    try:
        with _partial_dir(db_path.parent) as tmp:
            candidate = Path(tmp) / "restore.db"
            blob = source.read_bytes()
            if blob.startswith(MAGIC):
                if not passphrase:
                    raise BackupError(f"{source.name} is encrypted: give its passphrase")
                blob = decrypt_bytes(blob, passphrase)
            candidate.write_bytes(blob)
            verify(candidate, name=source.name)
            kept = None
            if db_path.exists():
                kept = db_path.with_name(f"{db_path.name}.replaced-{dt.datetime.now():%Y%m%d-%H%M%S}")
                _snapshot(db_path, kept)  # consistent copy, WAL included
                os.chmod(kept, 0o600)
            for side in ("-wal", "-shm"):
                Path(f"{db_path}{side}").unlink(missing_ok=True)
            os.chmod(candidate, 0o600)
            os.replace(candidate, db_path)
            return kept
    finally:
        os.umask(old_umask)


__all__ = ["BackupError", "backup", "restore", "verify", "encrypt_bytes", "decrypt_bytes"]
