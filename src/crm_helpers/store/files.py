"""Files written safely: whole or not at all, owner-only, never through a symbolic link.

Every file the workbook writes (rejects, pages, CSVs, ``share/``, backups, exports, the store's
copies) goes through :func:`write_text`, :func:`write_bytes` or :func:`atomic_open`: the data is
written to a temporary file in the destination's own folder (opened with ``O_EXCL | O_NOFOLLOW``,
so it can be neither a planted link nor someone else's file), flushed to the disk (``fsync``) and
renamed over the destination (``os.replace``). A reader sees the old file or the new one, never
half of one; on any error (a full disk, a file size limit) the temporary file is removed and the
destination is left exactly as it was. A destination that is a symbolic link is refused with
:class:`UnsafeWriteError`, so a link planted in the inbox or the pack (``NAME.rejects.csv ->
../crm.db``) can never make the workbook overwrite the file it points to.

A folder written as a whole (the report pack, ``share/``) is built in a fresh sibling folder
(:func:`fresh_folder`, named ``.crm-partial-<pid>-<name>``, created 0700, so nothing in it can be
planted) and swapped in place of the old one when every file is written. Partial folders of
processes that no longer run are removed by :func:`remove_stale_partials`;
:func:`partial_folders` lists those that exist (they may hold personal data).
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from crm_helpers.errors import CrmError

OWNER_ONLY = 0o600
"""Mode of every file written here unless told otherwise: read and write for the owner only."""
PARTIAL_PREFIX = ".crm-partial-"
"""Working folders of a write in progress: ``.crm-partial-<pid>-<name>``, gone when it ends."""
OLD_PREFIX = ".crm-old-"
"""A folder being replaced (``.crm-old-<pid>-<name>``), for the instant between two renames."""
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""``errno`` values meaning "no room for the data": a full disk, a quota, a file size limit."""


class UnsafeWriteError(CrmError, ValueError):
    """A file or folder the workbook would write is a symbolic link; nothing was written."""


def refuse_link(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path; :class:`UnsafeWriteError` when it is a symbolic link (even a broken one)."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafeWriteError(
            f"{path} is a symbolic link; refusing to write through it: remove the link (the file it "
            "points to is untouched) and try again.")
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file system lets a folder be synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None, file_mode: int = OWNER_ONLY) -> Iterator[IO[Any]]:
    """A handle on a new temporary file beside ``path`` that replaces ``path`` when the block ends.

    ``mode`` is ``"w"`` (text, in ``encoding`` with ``newline`` as :func:`open` takes them) or
    ``"wb"``. The file is created with ``file_mode`` (default owner-only 0600). An exception in the
    block, or while writing, removes the temporary file and leaves ``path`` as it was. Raises
    :class:`UnsafeWriteError` when ``path`` is a symbolic link.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = refuse_link(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, file_mode)
    try:
        os.fchmod(fd, file_mode)  # the umask may have taken bits off file_mode
        handle = os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": encoding, "newline": newline}))
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        refuse_link(path)  # a link planted while we wrote is refused too (os.replace would replace it)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8",
               file_mode: int = OWNER_ONLY) -> Path:
    """Write ``text`` to ``path`` whole or not at all (see :func:`atomic_open`); returns the Path."""
    with atomic_open(path, "w", encoding=encoding, file_mode=file_mode) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, file_mode: int = OWNER_ONLY) -> Path:
    """Write ``data`` to ``path`` whole or not at all (see :func:`atomic_open`); returns the Path."""
    with atomic_open(path, "wb", file_mode=file_mode) as handle:
        handle.write(data)
    return Path(path)


def place(source: str | os.PathLike[str], path: str | os.PathLike[str], *, file_mode: int = OWNER_ONLY) -> Path:
    """Move the finished file ``source`` (in the same file system, e.g. a private working folder)
    over ``path`` in one rename, fsynced, with ``file_mode``; refuses a link at ``path``."""
    source, path = Path(source), refuse_link(path)
    with open(source, "rb") as handle:
        os.fsync(handle.fileno())
    os.chmod(source, file_mode)
    os.replace(source, path)
    _fsync_folder(path.parent)
    return path


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError meaning "no room for the data" (:data:`DISK_FULL`)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


DISK_FULL_REASON = "the disk is full (or a file size limit was reached)"
"""How every message says that a write failed for lack of room (:func:`is_disk_full`)."""


def write_failure(exc: BaseException, *, disk_full: bool | None = None) -> str:
    """Why a file could not be written, in words: :data:`DISK_FULL_REASON` when ``disk_full`` (default:
    :func:`is_disk_full` of ``exc``), the refusal itself for an :class:`UnsafeWriteError`, else the error."""
    if disk_full if disk_full is not None else is_disk_full(exc):
        return DISK_FULL_REASON
    return str(exc) if isinstance(exc, UnsafeWriteError) else f"a file could not be written ({exc})"


# --------------------------------------------------------------------------- folders written whole
def _pid_of(folder: Path) -> int | None:
    """The process id in a ``.crm-partial-<pid>-…`` or ``.crm-old-<pid>-…`` name, or None."""
    for prefix in (PARTIAL_PREFIX, OLD_PREFIX):
        if folder.name.startswith(prefix):
            pid = folder.name[len(prefix):].split("-")[0]
            return int(pid) if pid.isdigit() else None
    return None


def process_running(pid: int) -> bool:
    """Whether a process with id ``pid`` runs on this machine (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def partial_folders(folder: str | os.PathLike[str]) -> list[Path]:
    """The working folders (``.crm-partial-*``, ``.crm-old-*``) in ``folder``, running or left by a
    killed process; they may hold personal data (a snapshot of the store, pages of a pack)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.name.startswith((PARTIAL_PREFIX, OLD_PREFIX)) and p.is_dir() and not p.is_symlink())


def remove_stale_partials(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the :func:`partial_folders` of ``folder`` whose process no longer runs; returns them.

    A write killed mid-way (power cut, SIGKILL) cannot clean up after itself. A ``.crm-old-<pid>-NAME``
    left between the two renames of a swap is the previous folder NAME: it is put back when NAME is
    missing, and removed otherwise. Folders of other users and of running processes are left alone.
    """
    removed = []
    for stale in partial_folders(folder):
        pid = _pid_of(stale)
        if pid is None or process_running(pid) or stale.lstat().st_uid != os.geteuid():
            continue
        if stale.name.startswith(OLD_PREFIX):
            name = stale.name[len(OLD_PREFIX):].split("-", 1)[-1]
            original = stale.with_name(name)
            if not original.exists() and not original.is_symlink():
                os.rename(stale, original)
                continue
        shutil.rmtree(stale, ignore_errors=True)
        removed.append(stale)
    return removed


def new_partial(target: str | os.PathLike[str]) -> Path:
    """A new, empty, owner-only (0700) working folder beside ``target``: ``.crm-partial-<pid>-<name>``."""
    target = Path(target)
    work = target.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{target.name}")
    if work.is_dir() and not work.is_symlink():  # our own, left by an earlier attempt in this process
        shutil.rmtree(work)
    elif work.is_symlink():
        work.unlink()
    work.mkdir(mode=0o700)
    os.chmod(work, 0o700)
    return work


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap the folders ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False
    where the system or the file system does not offer it."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def swap_in(work: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the finished folder ``work`` in place of the folder ``target`` and remove the old one.

    On Linux the two are exchanged in one step; elsewhere the old folder is renamed aside
    (``.crm-old-<pid>-<name>``) and ``work`` renamed into place, two renames an instant apart
    (:func:`remove_stale_partials` puts the old folder back if the process dies between them).
    """
    work, target = Path(work), refuse_link(target)
    if not target.exists():
        os.rename(work, target)
    elif _exchange(work, target):
        shutil.rmtree(work)  # now the previous folder
    else:
        old = target.with_name(f"{OLD_PREFIX}{os.getpid()}-{target.name}")
        os.rename(target, old)
        os.rename(work, target)
        shutil.rmtree(old)
    _fsync_folder(target.parent)


@contextmanager
def fresh_folder(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A new working folder beside ``target`` (:func:`new_partial`) to write the whole folder into;
    swapped in place of ``target`` when the block ends (:func:`swap_in`), removed with everything
    in it when the block raises, so ``target`` stays exactly as it was."""
    target = refuse_link(target)
    work = new_partial(target)
    try:
        yield work
        swap_in(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def copy_files(source: str | os.PathLike[str], dest: str | os.PathLike[str], *,
               folders: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[Path]:
    """Copy the regular files of the folder ``source`` into ``dest`` (owner-only), but those whose
    name ends with one of ``skip``, and the regular files of its subfolders named in ``folders``;
    symbolic links, hidden entries (working folders, temporary files) and anything else are left
    out. Returns the copies."""
    source, dest = Path(source), Path(dest)
    copied = []
    for entry in sorted(source.iterdir()) if source.is_dir() else []:
        if entry.is_symlink() or entry.name.startswith("."):  # links, working folders, temporary files
            continue
        if entry.is_file() and not (skip and entry.name.endswith(skip)):
            copied.append(write_bytes(dest / entry.name, entry.read_bytes()))
        elif entry.is_dir() and entry.name in folders:
            (dest / entry.name).mkdir(mode=0o700, exist_ok=True)
            copied += copy_files(entry, dest / entry.name)
    return copied
