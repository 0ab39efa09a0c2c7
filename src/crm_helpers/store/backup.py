"""Backups of the store: safe while notebooks are open, verified, rotated, optionally encrypted.

``backup()`` copies the live store with SQLite's online backup API (a consistent snapshot even
while another process writes), checks the copy with ``PRAGMA integrity_check``, writes it with
owner-only permissions and keeps the newest ``keep`` backups. With a passphrase the copy is
encrypted (Fernet: AES-128-CBC + HMAC-SHA256, key derived from the passphrase with scrypt) by
the ``cryptography`` package. ``restore()`` verifies a backup, keeps a copy of the store beside it, and copies the
backup into the store file (the online backup API again), so connections open on the store (the
desk, a notebook) see the restored store and write into it.

Erasures stay erased (see ``suppression.py``): every backup copies the store's suppression list to
the sidecar beside it; ``restore()`` erases again, before the restored store replaces the current
one, everybody the current store, the backup folder's sidecar or the default one lists;
:func:`check_copies` tells which backups and kept copies still hold an erased person, and
:func:`purge_copies` rewrites them without those people (decrypting and re-encrypting with the
same passphrase) and verifies each.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from crm_helpers.errors import CrmError
from crm_helpers.store import config
from crm_helpers.store.files import PARTIAL_PREFIX, UnsafeWriteError, place, remove_stale_partials
from crm_helpers.store.forget import erased_people, reapply_erasures
from crm_helpers.store.connection import (
    NEWER_VERSION,
    SCHEMA_VERSION,
    StoreError,
    migrate_db,
    newer_store_warning,
    open_db,
    owner_only_umask,
    rebuild_customer_search,
)
from crm_helpers.store.suppression import SidecarError, SuppressionList

MAGIC = b"CRMBAK1\n"
SALT_BYTES = 16


class BackupError(CrmError):
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


def is_encrypted(path: Path) -> bool:
    """Whether the file at ``path`` is an encrypted backup (starts with :data:`MAGIC`)."""
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


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
    if version > SCHEMA_VERSION:
        raise BackupError(f"{name}: {NEWER_VERSION} (schema version {version}; this workbook knows up to "
                          f"{SCHEMA_VERSION})")
    if not has_customers or version < 1:
        raise BackupError(f"{name}: not a CRM store (schema version {version})")
    return int(version)


def _partial_dir(folder: Path) -> tempfile.TemporaryDirectory[str]:
    """A private working folder in ``folder``; first removes those left by killed processes.

    A backup or restore killed mid-way (power cut, SIGKILL) cannot clean up after itself, and its
    working folder may hold a plaintext copy of the store even when the backup was to be
    encrypted: the next backup or restore removes it (:func:`crm_helpers.store.files.remove_stale_partials`).
    """
    remove_stale_partials(folder)
    return tempfile.TemporaryDirectory(prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", dir=folder)


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
    folder = Path(to) if to else config.backups_dir(db_path)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    final = folder / (f"crm-{stamp}.db" + (".enc" if passphrase else ""))
    try:
        with owner_only_umask(), _partial_dir(folder) as tmp:
            copy = Path(tmp) / "snapshot.db"
            _snapshot(db_path, copy)
            verify(copy, name=db_path.name)
            erasures = SuppressionList.load_file(copy)
            if erasures:
                erasures.write_sidecar(folder)
            if passphrase:
                (Path(tmp) / "snapshot.enc").write_bytes(encrypt_bytes(copy.read_bytes(), passphrase))
                copy = Path(tmp) / "snapshot.enc"
            place(copy, final)  # refuses a link planted at the backup's name
    except (OSError, UnsafeWriteError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise BackupError(f"{final}: cannot write the backup: {reason}") from None
    _rotate(folder, keep)
    return final


def _backups_in(folder: Path) -> list[Path]:
    """The backup files of ``folder``, oldest first (their names hold the time)."""
    return sorted(p for p in folder.glob("crm-*.db*") if p.suffix in (".db", ".enc"))


def _rotate(folder: Path, keep: int) -> None:
    backups = _backups_in(folder)
    for old in backups[: max(len(backups) - keep, 0)]:
        old.unlink()


@dataclass
class Restored:
    """What :func:`restore` did: where the replaced store was kept (or None), and the people on the
    suppression list it erased again because the backup predates their erasure."""

    kept: Path | None
    erased_again: int = 0


def restore(
    backup_file: str | os.PathLike[str], db_path: str | os.PathLike[str], *, passphrase: str | None = None
) -> Restored:
    """Copy a verified backup into the store, keeping every erasure.

    The backup is decrypted (when encrypted) and checked before anything is touched; everybody on
    the suppression list (of the current store, of the sidecar beside the backup and of the one in
    the store's backup folder) is erased again in it, and it is compacted so no freed page keeps
    their data. It is then copied INTO the store file with SQLite's online backup API, under the
    store's write lock, rather than put in the file's place: a desk or notebook that opened the store
    before sees the restored content at its next read and writes into it, never into a file that is
    gone. While the lock is held (nobody can write), the current store is kept as
    ``crm.db.replaced-YYYYMMDD-HHMMSS`` and its suppression list read again: a person erased while
    the backup was being prepared is erased in it too before the copy goes on. The store keeps its
    file, owner-only mode and journal (WAL). A store file SQLite cannot read at all is moved aside
    to the kept name and a new one written. A store made by a newer version of the workbook is
    refused (nothing is written to it), as is a backup made by one.
    """
    source, db_path = Path(backup_file), Path(db_path)
    if not source.exists():
        raise BackupError(f"{source}: no such backup")
    with owner_only_umask():
        erasures = known_erasures(db_path, source.parent)
        existed = db_path.exists()
        with _partial_dir(db_path.parent) as tmp:
            candidate = Path(tmp) / "restore.db"
            blob = source.read_bytes()
            if blob.startswith(MAGIC):
                if not passphrase:
                    raise BackupError(f"{source.name} is encrypted: give its passphrase")
                blob = decrypt_bytes(blob, passphrase)
            candidate.write_bytes(blob)
            verify(candidate, name=source.name)
            kept = db_path.with_name(f"{db_path.name}.replaced-{dt.datetime.now():%Y%m%d-%H%M%S}") if existed else None
            damaged = existed and _set_aside_if_damaged(db_path, kept)
            live = _live_store(db_path)
            try:
                page_size = live.execute("PRAGMA page_size").fetchone()[0]
                erased_again = 0
                while True:
                    erased_again += _erase_again(candidate, erasures, page_size=page_size)
                    try:
                        _copy_into(candidate, live, db_path, kept=None if damaged else kept, erasures=erasures)
                        break
                    except _ErasedMeanwhile as meanwhile:  # the copy was rolled back; erase them too
                        erasures = erasures.merged(meanwhile.erasures)
            finally:
                live.close()
        if erasures:
            erasures.write_sidecar(config.backups_dir(db_path))
        return Restored(kept, erased_again)


class _ErasedMeanwhile(BackupError):
    """People were erased in the store after the restore read its suppression list (a signal
    within :func:`restore`, which erases them too and copies again)."""

    def __init__(self, erasures: SuppressionList) -> None:
        super().__init__("erased meanwhile")
        self.erasures = erasures


def _set_aside_if_damaged(db_path: Path, kept: Path) -> bool:
    """Move a store file that SQLite cannot read at all (its header damaged: "not a database") to
    ``kept``, with its WAL side files removed, and say whether it did: no connection can use such a
    file, and the restore then writes a new one."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
        return False
    except sqlite3.DatabaseError as exc:
        if "not a database" not in str(exc) and "encrypted" not in str(exc):
            raise BackupError(f"{db_path.name}: the store cannot be read ({exc}); nothing was restored") from None
    os.replace(db_path, kept)
    os.chmod(kept, 0o600)
    for side in ("-wal", "-shm"):
        Path(f"{db_path}{side}").unlink(missing_ok=True)
    return True


def _live_store(db_path: Path) -> sqlite3.Connection:
    """A connection to the store the restore copies into (created, owner-only and in WAL mode, when
    missing), with the busy timeout of every store connection. A store made by a newer version of
    the workbook is refused: the restore would write to it."""
    try:
        db = open_db(db_path, migrate=False)
        warning = newer_store_warning(db)
    except StoreError as exc:
        raise BackupError(f"{str(exc).rstrip('.')}; nothing was restored.") from None
    if warning:
        db.conn.close()
        raise BackupError(f"{warning} Nothing was restored.")
    return db.conn


def _copy_into(candidate: Path, live: sqlite3.Connection, db_path: Path, *, kept: Path | None,
               erasures: SuppressionList) -> None:
    """Copy the store file ``candidate`` into the open store ``live``, one page a step.

    The first step takes the store's write lock, which the backup API holds until the last page is
    copied and committed. Holding it, the current store (readable meanwhile: WAL readers do not wait
    for the writer) is kept as ``kept`` and its suppression list compared with ``erasures``: a person
    erased since is :class:`_ErasedMeanwhile`, which rolls the copy back.
    """
    def under_lock(status: int, remaining: int, total: int) -> None:
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise BackupError(f"{db_path.name}: the store is busy (another program keeps writing to it); "
                              "nothing was restored. Try again in a moment.")
        if locked:
            return
        locked.append(True)
        current = SuppressionList.load_file(db_path)
        if set(current.erasures) - set(erasures.erasures):
            raise _ErasedMeanwhile(current)
        if kept is not None:
            working = candidate.with_name("kept.db")
            _snapshot(db_path, working)  # consistent copy, WAL included
            place(working, kept)  # refuses a link planted at the kept copy's name

    locked: list[bool] = []
    source = sqlite3.connect(f"file:{candidate}?mode=ro", uri=True)
    try:
        source.backup(live, pages=1, progress=under_lock)
    finally:
        source.close()


def known_erasures(db_path: Path, *folders: Path) -> SuppressionList:
    """The suppression list of the store at ``db_path`` (when it can be read), of the sidecar in its
    backup folder and of those in ``folders``, merged. A damaged sidecar is a BackupError: going on
    without it could bring erased people back."""
    lists = [SuppressionList.load_file(db_path)] if db_path.exists() else []
    for folder in dict.fromkeys([config.backups_dir(db_path), *folders]):
        try:
            lists.append(SuppressionList.read_sidecar(folder))
        except SidecarError as exc:
            raise BackupError(f"{exc}; nothing was changed. Mend or remove it, then restore again.") from None
    return SuppressionList().merged(*lists)


def _erase_again(path: Path, erasures: SuppressionList, *, page_size: int) -> int:
    """Bring the store file ``path`` to the current schema, erase again the people of ``erasures``
    it holds and compact it (also to give it ``page_size``, in bytes: the backup API copies into a
    WAL store only pages of its own size); returns how many people that was."""
    conn = sqlite3.connect(str(path))
    try:
        conn.execute("PRAGMA journal_mode = DELETE")  # a file's own setting; VACUUM changes no WAL page size
        conn.execute("PRAGMA foreign_keys = ON")
        db = Database(conn)
        migrate_db(db)
        erased = len(reapply_erasures(db, erasures)) if erasures else 0
        if erased or conn.execute("PRAGMA page_size").fetchone()[0] != page_size:
            conn.execute(f"PRAGMA page_size = {int(page_size)}")
            conn.execute("VACUUM")
        conn.execute("PRAGMA secure_delete = ON")  # the old index's pages are overwritten, not left free
        rebuild_customer_search(db)  # its rowids are the customers' as they are in this file now
        conn.commit()
    finally:
        conn.close()
    return erased


@dataclass
class CopyCheck:
    """One backup or kept copy of the store, and the erased people it still holds."""

    path: Path
    holds: list[str] = field(default_factory=list)
    """Pseudonyms of the erasures whose person this copy still holds."""
    problem: str | None = None
    """Why the copy could not be checked (encrypted without its passphrase, damaged), or None."""
    purged: bool = False
    """True when :func:`purge_copies` rewrote it without those people and verified it."""


def copies(db_path: str | os.PathLike[str], folders: tuple[Path, ...] = ()) -> list[Path]:
    """The backups in the store's backup folder and in ``folders``, and the copies :func:`restore`
    kept beside the store (``crm.db.replaced-*``)."""
    db_path = Path(db_path)
    found = {p for folder in {config.backups_dir(db_path), *map(Path, folders)} if folder.is_dir()
             for p in _backups_in(folder)}
    found |= set(db_path.parent.glob(f"{db_path.name}.replaced-*"))
    return sorted(found)


def check_copies(db_path: str | os.PathLike[str], erasures: SuppressionList, *, folders: tuple[Path, ...] = (),
                 passphrase: str | None = None) -> list[CopyCheck]:
    """Which :func:`copies` still hold people of ``erasures``; encrypted ones need the passphrase."""
    return [_through_copy(p, erasures, passphrase, purge=False) for p in copies(db_path, folders)]


def purge_copies(db_path: str | os.PathLike[str], erasures: SuppressionList, *, folders: tuple[Path, ...] = (),
                 passphrase: str | None = None) -> list[CopyCheck]:
    """Rewrite every copy that holds people of ``erasures`` without them (erased as in the store,
    brought to the current schema, compacted, re-encrypted with the same passphrase), verify it, and
    replace it atomically. A copy that cannot be read is left as it is and says why. Backups can be
    taken meanwhile: they are new files, and a backup rotated away during the purge stays away."""
    return [_through_copy(p, erasures, passphrase, purge=True) for p in copies(db_path, folders)]


def _held(path: Path, erasures: SuppressionList) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sorted({erasure.pseudonym for _, _, erasure in erased_people(Database(conn), erasures)})
    finally:
        conn.close()


def _through_copy(path: Path, erasures: SuppressionList, passphrase: str | None, *, purge: bool) -> CopyCheck:
    """Check (and with ``purge`` rewrite) one copy in a private working folder beside it; any
    failure leaves the copy as it was and becomes the check's ``problem``."""
    check = CopyCheck(path)
    try:
        with owner_only_umask(), _partial_dir(path.parent) as tmp:
            _check_or_purge(check, Path(tmp), erasures, passphrase, purge)
    except (BackupError, OSError, UnsafeWriteError, sqlite3.DatabaseError) as exc:
        check.problem, check.purged = str(exc), False
    return check


def _check_or_purge(check: CopyCheck, tmp: Path, erasures: SuppressionList, passphrase: str | None,
                    purge: bool) -> None:
    blob = check.path.read_bytes()
    sealed = blob.startswith(MAGIC)
    if sealed and not passphrase:
        check.problem = ("encrypted: checked only with its passphrase ($CRM_BACKUP_PASSPHRASE, "
                         "or asked by --purge-backups)")
        return
    work, clean = tmp / "copy.db", tmp / "clean.db"
    work.write_bytes(decrypt_bytes(blob, passphrase) if sealed else blob)
    verify(work)
    check.holds = _held(work, erasures)
    if not (purge and check.holds):
        return
    conn = sqlite3.connect(str(work))
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        db = Database(conn)
        migrate_db(db)
        reapply_erasures(db, erasures)
        conn.execute("VACUUM INTO ?", [str(clean)])  # a fresh file: no freed page of the old one
    finally:
        conn.close()
    data = clean.read_bytes()
    if sealed:
        data = encrypt_bytes(data, passphrase)
        clean.write_bytes(decrypt_bytes(data, passphrase))  # verify what will be on disk
    verify(clean)
    if _held(clean, erasures):
        raise BackupError(f"{check.path.name}: still holds erased people after the rewrite; left as it was")
    out = tmp / "out"
    out.write_bytes(data)
    if check.path.exists():  # a backup rotated away meanwhile stays away
        place(out, check.path)
    check.purged = True


__all__ = ["BackupError", "CopyCheck", "Restored", "backup", "check_copies", "copies", "decrypt_bytes", "encrypt_bytes",
           "is_encrypted", "known_erasures", "purge_copies", "restore", "verify"]
