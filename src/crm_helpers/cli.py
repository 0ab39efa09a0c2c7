"""The ``crm`` command: set up the store, import files, build the demo, render reports.

Every command takes ``--db PATH`` (or the environment variable ``CRM_DB``); the store is
created on first use. Errors are reported in one plain sentence, never as a traceback. What the
command says is in the owner's language: ``crm --lang zh ...`` or ``CRM_LANG=zh`` (``crm report
--lang zh`` for one pack), English by default (:mod:`crm_helpers.i18n`).
"""

from __future__ import annotations

import datetime as dt
import errno
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click

from crm_helpers.errors import CrmError
from crm_helpers.i18n import LanguageError, check_language, language, set_language, t, tc, tn
from crm_helpers.store import config
from crm_helpers.store.files import DISK_FULL_REASON
from crm_helpers.store.facts import next_day, on_or_before_sql
from crm_helpers.store.periods import Period, latest_complete_month, month_start, parse_month
from crm_helpers.store.values import money, money_span
from crm_helpers.store.connection import (
    StoreError,
    explain_error,
    newer_store_warning,
    open_db,
    refuse_newer,
    schema_version,
    table_counts,
)

db_option = click.option(
    "--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    envvar="CRM_DB", show_envvar=True, help="The store (default: data/crm.db).",
)


def _db_path(db_path: Path | None) -> Path:
    return db_path or config.default_db_path()


def _open(db_path: Path | None, *, writing: bool = True):
    """The store, for a command that may write to it (``writing``): one made by a newer version of
    the workbook is then refused with the sentence that says so; commands that only read (status,
    export) open it and say it (:func:`_warn_if_newer`)."""
    try:
        db = open_db(_db_path(db_path))
        if writing:
            refuse_newer(db)
    except StoreError as exc:
        raise Refused(str(exc)) from None
    return db


def _warn_if_newer(db) -> None:
    """Say, on standard error, that the store was made by a newer version (and so is read only)."""
    warning = newer_store_warning(db)
    if warning:
        click.echo(t("Warning: {warning}", warning=warning), err=True)


def explain_os_error(exc: OSError) -> str:
    """One plain sentence for a file-system error on a path the user typed (never a traceback)."""
    where = exc.filename or t("the file")
    if isinstance(exc, IsADirectoryError):
        return t("{where} is a folder, not a file; give the path of one file inside it", where=where)
    if isinstance(exc, NotADirectoryError):
        return t("{where}: a part of this path is a file, not a folder", where=where)
    if isinstance(exc, FileNotFoundError):
        return t("{where}: no such file or folder; check the path (run `ls` on its folder)", where=where)
    if isinstance(exc, PermissionError):
        return t("{where}: permission denied; this user may not read or write it (check its owner and mode)",
                 where=where)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return t("{where}: {reason}; free some space and try again", where=where, reason=t(DISK_FULL_REASON))
    return f"{where}: {exc.strerror or exc}"


class Refused(click.ClickException, CrmError):
    """A ``crm`` command's refusal: exit status 1 and one plain sentence on standard error after
    "Error:", both in the owner's language (Click's own "Error:" is English only)."""

    def show(self, file: Any = None) -> None:
        click.echo(t("Error: {reason}", reason=self.format_message()), file=file, err=file is None,
                   color=self.show_color)


class _PlainErrorsCommand(click.Command):
    """A ``crm`` command: any file-system or SQLite error it meets on a path the user typed (a
    folder for a file, a missing or unreadable file, a locked store, a full disk) ends as one
    plain sentence and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # the reader of our output went away (`crm status | head`): click exits quietly
        except OSError as exc:
            raise Refused(explain_os_error(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise Refused(explain_error(_db_path(ctx.params.get("db_path")), exc)) from None


class _PlainErrorsGroup(click.Group):
    """A command group whose commands and subgroups all report errors as :class:`_PlainErrorsCommand`."""

    command_class = _PlainErrorsCommand
    group_class = type  # subgroups are of this class too


@click.group(cls=_PlainErrorsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--lang", default=None, metavar="LANG",
              help="Language of what the command says: en (English) or zh (Simplified Chinese); default: $CRM_LANG, else en.")
def main(lang: str | None) -> None:
    """CRM workbook for one-person companies: a local store, imports and monthly reports."""
    _use_language(lang)


def _use_language(lang: str | None) -> str:
    """Make ``lang`` (else ``$CRM_LANG``, else English) the language of what the command says and
    writes; a language without a catalogue is refused, naming the ones there are."""
    try:
        return set_language(check_language(lang) if lang else config.report_language())
    except LanguageError as exc:
        raise Refused(f"{exc} (--lang or CRM_LANG)") from None


@main.command()
@db_option
def init(db_path: Path | None) -> None:
    """Create the store, or upgrade an older one in place."""
    db = _open(db_path, writing=False)
    if newer_store_warning(db):
        raise Refused(str(newer_store_warning(db)))
    click.echo(t("{store}: schema version {version}, ready.", store=_db_path(db_path), version=schema_version(db)))


@main.command()
@db_option
def status(db_path: Path | None) -> None:
    """Row counts per table and the date range of the orders."""
    db = _open(db_path, writing=False)
    _warn_if_newer(db)
    for name, count in table_counts(db).items():
        click.echo(f"{name:18} {count:>9,}")
    first, last = db.execute("SELECT min(order_date), max(order_date) FROM orders").fetchone()
    if first:
        click.echo(t("orders from {first} to {last}", first=first, last=last))
    from crm_helpers.store.undo import list_batches

    batches = list_batches(db, limit=10)
    if len(batches):
        click.echo(t("recent imports (undo one with `crm undo-import BATCH`):"))
    for b in batches.itertuples(index=False):
        state = t("undone {when}", when=b.undone_at) if b.undone_at else ""
        click.echo(t("  batch {batch}  {when}  {table} {file}: {inserted} inserted, {updated} updated  {state}",
                     batch=f"{b.batch_id:>4}", when=b.imported_at, table=f"{b.table:14}", file=b.file,
                     inserted=b.inserted, updated=b.updated, state=state).rstrip())


@main.command()
@db_option
@click.option("--customers", default=800, show_default=True, help="Number of buying customers.")
@click.option("--months", default=24, show_default=True, help="Months of history.")
@click.option("--seed", default=42, show_default=True, help="Random seed (same seed, same business).")
@click.option("--end", default=None, help="Last month of data, YYYY-MM (default: last complete month).")
@click.option("--replace", is_flag=True,
              help="Back up the store (verified), then replace everything in it with the demo.")
def demo(db_path: Path | None, customers: int, months: int, seed: int, end: str | None, replace: bool) -> None:
    """Fill an empty store with a realistic demo business (see docs/demo-data.md).

    A store that holds anything is refused, so the demo never mixes with or overwrites real data;
    ``--replace`` first takes a verified backup, says where, and then rebuilds the store.
    """
    from crm_helpers.store.backup import BackupError, backup
    from crm_helpers.demo import generate_demo, write_demo

    path = _db_path(db_path)
    db = _open(db_path)
    held = {t: n for t, n in table_counts(db).items() if n}
    if held and not replace:
        what = ", ".join(f"{n:,} {tc('table', table)}" for table, n in held.items())
        raise Refused(t(
            "{store} already holds data ({what}); the demo would overwrite or mix with it. Use another --db, or "
            "`crm demo --replace` (`make demo FORCE=1`) to back it up first and replace it.", store=path, what=what))
    try:
        business = generate_demo(customers=customers, months=months, seed=seed, end=end)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    if held:
        db.close()
        try:
            saved = backup(path)
        except BackupError as exc:
            raise Refused(t("{reason}; the store was left as it was", reason=exc)) from None
        click.echo(t("Backup of the replaced store verified and written to {path} (`crm restore` brings it back)",
                     path=saved))
        for side in ("", "-wal", "-shm"):
            Path(f"{path}{side}").unlink(missing_ok=True)
        db = _open(db_path)
    counts = write_demo(db, business)
    click.echo(t("Demo business written to {store} ({start} to {end}):", store=path, start=business.start,
                 end=business.end))
    click.echo(", ".join(f"{n} {tc('table', table)}" for table, n in counts.items()))


def _parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    result = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(t("{pair} is not of the form NAME=VALUE", pair=repr(pair)), param_hint=what)
        key, value = pair.split("=", 1)
        result[key.strip()] = value.strip()
    return result


@main.command(name="import")
@db_option
@click.argument("args", nargs=-1, required=True, metavar="[TABLE] FILE")
@click.option("--map", "maps", multiple=True, metavar="SRC=DST", help="Map a file column to a store column.")
@click.option("--encoding", default=None, help="File encoding (default: detected).")
@click.option("--dayfirst/--monthfirst", default=None, help="Day/month order of dates like 03/04/2025.")
@click.option("--dry-run", is_flag=True, help="Check and count, write nothing.")
@click.option("--skip-bad-rows", is_flag=True, help="Write good rows; bad rows go to FILE.rejects.csv.")
@click.option("--create-missing-customers", is_flag=True, help="Create bare customers for unknown ids.")
def import_(db_path: Path | None, args: tuple[str, ...], maps: tuple[str, ...], encoding: str | None,
            dayfirst: bool | None, dry_run: bool, skip_bad_rows: bool, create_missing_customers: bool) -> None:
    """Import a CSV or Excel export.

    `crm import FILE`: the export of a tool the workbook knows (Shopify, Stripe, Taobao, ...; see
    docs/bringing-your-data-in.md) is recognised from its headers and fills every table it holds.
    `crm import TABLE FILE`: any other file, into TABLE (customers, orders, ...), with --map for
    headers the workbook cannot guess; a --map is kept for the file's layout, so next month's file
    of it imports with `crm import FILE` alone.
    """
    from crm_helpers.store.queries import currency_note
    from crm_helpers.ingest.table_import import ImportRejected, import_file
    from crm_helpers.ingest.export_import import import_any

    if len(args) > 2:
        raise click.UsageError(t("give FILE, or TABLE FILE"))
    table, file = (None, Path(args[0])) if len(args) == 1 else (args[0], Path(args[1]))
    if table is None and (maps or create_missing_customers):
        raise click.UsageError(t("--map and --create-missing-customers need the table: crm import TABLE FILE"))
    db = _open(db_path)
    try:
        if table is None:
            result: Any = import_any(db, file, encoding=encoding, dayfirst=dayfirst, dry_run=dry_run,
                                     skip_bad_rows=skip_bad_rows)
        else:
            result = import_file(
                db, table, path=file, mapping=_parse_pairs(maps, "--map") or None, encoding=encoding, dayfirst=dayfirst,
                dry_run=dry_run, skip_bad_rows=skip_bad_rows, create_missing_customers=create_missing_customers,
            )
    except (ImportRejected, ValueError, StoreError) as exc:
        raise Refused(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise Refused(explain_error(_db_path(db_path), exc)) from None
    click.echo(result.summary())
    if table == "orders" and not dry_run and (note := currency_note(db)):
        click.echo(t("note: {note}", note=note))


@main.command(name="undo-import")
@db_option
@click.argument("batch", type=int)
def undo_import_cmd(db_path: Path | None, batch: int) -> None:
    """Take back import BATCH: remove the rows it inserted, restore the rows it updated.

    Refused, with the reason, when later changes depend on it (a later import or an edit changed
    those rows, or other rows refer to rows it inserted). `crm status` lists the recent batches.
    """
    from crm_helpers.store.undo import UndoError, undo_import

    db = _open(db_path)
    try:
        result = undo_import(db, batch)
    except UndoError as exc:
        raise Refused(str(exc)) from None
    click.echo(result.summary())


def _resolve_month(db, month: str | None) -> Period:
    if month is None:
        found = latest_complete_month(db)
        if found is None:
            raise Refused(t("the store holds no orders yet: import some, or run `crm demo` first"))
        return found
    if month == "previous":
        today = dt.date.today()
        return parse_month(f"{month_start(month_start(today) - dt.timedelta(days=1)):%Y-%m}")
    try:
        return parse_month(month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None


def _check_has_data(db, period: Period) -> None:
    n = db.execute(
        f"SELECT count(*) FROM orders WHERE order_date >= :start AND {on_or_before_sql('order_date')}",
        {"start": period.start.isoformat(), "end_next": next_day(period.end)},
    ).fetchone()[0]
    if n == 0:
        first, last = db.execute("SELECT min(order_date), max(order_date) FROM orders").fetchone()
        if first:
            raise Refused(t("no orders in {month}; the store's orders run from {first} to {last}. Pick "
                                         "another --month.", month=period.label, first=first, last=last))
        raise Refused(t("no orders in {month}; the store holds no orders. Pick another --month.",
                                     month=period.label))


@main.command()
@db_option
@click.option("--month", default=None, help="YYYY-MM, or 'previous' (default: latest complete month of data).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: reports/YYYY-MM).")
@click.option("--only", default=None, help="Comma-separated notebook numbers, e.g. 02,04.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Notebooks run at once (default: cores).")
@click.option("--share", is_flag=True, help="Also write share/: code hidden, personal data masked.")
@click.option("--with-code", is_flag=True,
              help="Show the notebooks' code in the pages (the analyst's view); the owner's pack hides it.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Override a notebook parameter.")
@click.option("--no-pdf", is_flag=True, help="Skip brief.pdf and pack.pdf (printed with headless Chromium).")
@click.option("--lang", default=None, metavar="LANG",
              help="Language of the pack: en (English) or zh (Simplified Chinese); default: $CRM_LANG, else en.")
def report(db_path: Path | None, month: str | None, out_dir: Path | None, only: str | None, jobs: int | None,
           share: bool, with_code: bool, params: tuple[str, ...], no_pdf: bool, lang: str | None) -> None:
    """Render every notebook for one month into reports/YYYY-MM/ with an index page (owner-only files)."""
    from crm_helpers.report.runner import ReportError, render_report
    from crm_helpers.report.share import ShareError, write_share_pack

    lang = _use_language(lang) if lang else language()  # else as `crm --lang` or CRM_LANG said
    db = _open(db_path)
    period = _resolve_month(db, month)
    _check_has_data(db, period)
    overrides: dict[str, Any] = {k: _literal(v) for k, v in _parse_pairs(params, "--param").items()}
    try:
        result = render_report(
            _db_path(db_path), period, out_dir=out_dir, only=only.split(",") if only else None,
            jobs=jobs, with_code=with_code, overrides=overrides, lang=lang,
        )
    except ReportError as exc:  # also a pack that could not be written: the previous one is unchanged
        raise Refused(str(exc)) from None
    for run in result.runs:
        if not run.rendered:
            continue
        mark = t("ok") if run.ok else t("FAILED")
        click.echo(f"  {run.name:32} {mark:6} {run.seconds:6.1f} s")
        for file in run.inbox:
            click.echo("    " + t("inbox: {message}", message=file["message"]))
    kept = [r.name for r in result.runs if not r.rendered]
    if kept:
        click.echo("  " + t("kept from earlier runs: {pages}", pages=", ".join(kept)))
    click.echo(t("Report: {index}", index=result.index))
    if not no_pdf:
        from crm_helpers.report.pdf import write_pdfs

        printed = write_pdfs(result)
        click.echo(t("PDF: {files}", files=", ".join(str(p) for p in printed.written)) if printed.ok else printed.message)
    if share:  # after the pack is in place and reported, so a failure here names only the shared copy
        try:
            click.echo(t("Shared copy: {folder}", folder=write_share_pack(result, _db_path(db_path))))
        except ShareError as exc:
            raise Refused(str(exc)) from None
    if not result.ok:
        names = ", ".join(r.name for r in result.failed)
        click.echo(t("Error: {pages} failed; see the index for the error and the executed notebook.", pages=names),
                   err=True)
        sys.exit(1)


def _literal(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


@main.group()
def export() -> None:
    """Export lists for other tools."""


@export.command(name="segment")
@db_option
@click.argument("segment")
@click.option("--to", "to", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CSV file to write.")
@click.option("--as-of", default=None, help="Date of the segmentation, YYYY-MM-DD (default: last order date).")
@click.option("--include-without-consent", is_flag=True, help="Also list customers without marketing consent.")
def export_segment_cmd(db_path: Path | None, segment: str, to: Path, as_of: str | None,
                       include_without_consent: bool) -> None:
    """Write the customers of an RFM SEGMENT (e.g. "At Risk") to CSV for an e-mail tool."""
    from crm_helpers.analyses.segment_export import export_segment

    db = _open(db_path, writing=False)
    _warn_if_newer(db)
    try:
        n = export_segment(db, segment, to=to, as_of=as_of, include_without_consent=include_without_consent)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    click.echo(t("{count} customers of {segment} written to {file}", count=n, segment=repr(segment), file=to))


@main.command(name="backup")
@db_option
@click.option("--to", "to", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Backup folder (default: data/backups).")
@click.option("--keep", default=10, show_default=True, type=click.IntRange(min=1), help="Backups to keep.")
@click.option("--encrypt", is_flag=True, help="Encrypt with a passphrase (asked, or $CRM_BACKUP_PASSPHRASE).")
def backup_cmd(db_path: Path | None, to: Path | None, keep: int, encrypt: bool) -> None:
    """Copy the store safely (even while notebooks are open), verify it and keep the last N."""
    from crm_helpers.store.backup import BackupError, backup

    passphrase = _passphrase(confirm=True) if encrypt else None
    try:
        path = backup(_db_path(db_path), to, keep=keep, passphrase=passphrase)
    except BackupError as exc:
        raise Refused(str(exc)) from None
    click.echo(t("Backup verified and written to {path}", path=path))


@main.command(name="restore")
@db_option
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
def restore_cmd(db_path: Path | None, backup_file: Path) -> None:
    """Replace the store with a verified BACKUP_FILE; the replaced store is kept beside it.

    People erased with `crm forget` since the backup was taken are erased again in it first.
    """
    from crm_helpers.store.backup import BackupError, is_encrypted, restore

    passphrase = None
    if backup_file.is_file() and is_encrypted(backup_file):
        passphrase = _passphrase(confirm=False)
    try:
        restored = restore(backup_file, _db_path(db_path), passphrase=passphrase)
    except BackupError as exc:
        raise Refused(str(exc)) from None
    click.echo(t("Restored {backup} into {store}", backup=backup_file.name, store=_db_path(db_path)))
    if restored.erased_again:
        click.echo(tn("Erased again: {n} person that `crm forget` erased after this backup was taken (see `crm forget "
                      "--list`).", "Erased again: {n} people that `crm forget` erased after this backup was taken "
                      "(see `crm forget --list`).", n=restored.erased_again))
    if restored.kept:
        click.echo(t("The replaced store is kept as {path}", path=restored.kept))


def _passphrase(confirm: bool) -> str:
    """The backup passphrase: ``$CRM_BACKUP_PASSPHRASE``, else asked on the terminal (twice with
    ``confirm``). Without a terminal to ask on (a cron job, a pipe), one plain refusal."""
    import os

    env = os.environ.get("CRM_BACKUP_PASSPHRASE")
    if env:
        return env
    if not _has_terminal():
        raise Refused(t(
            "a passphrase is needed and there is no terminal to ask it: set CRM_BACKUP_PASSPHRASE (for example "
            "`read -rs CRM_BACKUP_PASSPHRASE && export CRM_BACKUP_PASSPHRASE`) and run the command again"))
    try:
        return click.prompt(t("Backup passphrase"), hide_input=True, confirmation_prompt=confirm)
    except click.Abort:
        raise Refused(t("no passphrase was given; nothing was done")) from None


def _has_terminal() -> bool:
    """Whether a passphrase can be asked without echo: standard input is a terminal, or the
    process has one (``/dev/tty``, which the prompt then reads)."""
    import os

    if sys.stdin is not None and sys.stdin.isatty():
        return True
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


@main.command(name="forget")
@db_option
@click.argument("who", required=False)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--list", "list_", is_flag=True,
              help="List the erasures (date, identifiers, rows), without personal data; with WHO: was WHO erased?")
@click.option("--purge-backups", is_flag=True,
              help="Also rewrite the backups and kept copies that still hold erased people, and verify them.")
@click.option("--backups", "folders", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Another backup folder to check or purge (e.g. one given to `crm backup --to`).")
def forget_cmd(db_path: Path | None, who: str | None, yes: bool, list_: bool, purge_backups: bool,
               folders: tuple[Path, ...]) -> None:
    """Erase the personal data of the customer with id or e-mail WHO, everywhere, and keep them erased.

    The person goes on the suppression list: imports skip their rows, restores erase them again.
    Backups and kept copies that still hold them are listed; --purge-backups rewrites them (without
    WHO: for everybody on the list).
    """
    from crm_helpers.store.forget import ForgetError, forget
    from crm_helpers.store.suppression import SuppressionList

    db = _open(db_path, writing=not list_)
    if list_:
        _list_erasures(SuppressionList.load(db), who)
        return
    if who is None and not purge_backups:
        raise click.UsageError(t("give WHO (an id or e-mail), --list, or --purge-backups"))
    erased = None
    if who is not None:
        if not yes:
            click.confirm(t("Erase every personal detail of {who}? This cannot be undone", who=who), abort=True)
        try:
            report = forget(db, who, inbox=config.inbox_dir(), backups=config.backups_dir(_db_path(db_path)))
        except ForgetError as exc:
            raise Refused(str(exc)) from None
        erased = report.pseudonym
        changed = ", ".join(f"{n} {tc('table', table)}" for table, n in report.rows_changed.items())
        click.echo(t("Erased. The person's rows now belong to {pseudonym} ({changed}); they are on the suppression "
                     "list, so imports and restores keep them out.", pseudonym=report.pseudonym, changed=changed))
        if report.packs is not None:
            click.echo(report.packs.message)
        if report.working_folders:
            click.echo(t("A report or backup still running works in {folders}: what it writes may hold them. Once it "
                         "has finished, render that report again (crm report) or rewrite the backups (crm forget "
                         "--list names those that hold them).", folders=", ".join(report.working_folders)))
        if report.reject_files_cleaned:
            click.echo(t("Removed their rows from: {files}", files=", ".join(report.reject_files_cleaned)))
        if report.inbox_files_mentioning:
            click.echo(t("These original export files in the inbox still mention them; delete or edit them: {files}",
                         files=", ".join(report.inbox_files_mentioning)))
    _tell_copies(_db_path(db_path), SuppressionList.load(db), erased, folders, purge_backups)


def _list_erasures(erasures, who: str | None) -> None:
    if who is not None:
        hit = erasures.match({"customer_id": who, "email": who, "phone": who})
        click.echo(t("{who} was erased on {day} ({pseudonym}).", who=who, day=hit.erased_at[:10],
                     pseudonym=hit.pseudonym) if hit else t("{who} is not on the suppression list.", who=who))
        return
    if not erasures:
        click.echo(t("Nobody has been erased."))
    for erasure in erasures.erasures.values():
        click.echo(erasure.describe())


def _tell_copies(db_path: Path, erasures, erased: str | None, folders: tuple[Path, ...], purge: bool) -> None:
    """List (or, with ``purge``, rewrite) the backups and kept copies that still hold the person just
    ``erased`` (None: anybody on the list)."""
    import os

    from crm_helpers.store.backup import check_copies, copies, is_encrypted, purge_copies

    paths = copies(db_path, folders)
    if not paths:
        return
    passphrase = os.environ.get("CRM_BACKUP_PASSPHRASE")
    if purge and not passphrase and any(is_encrypted(p) for p in paths):
        passphrase = _passphrase(confirm=False)
    checks = (purge_copies if purge else check_copies)(db_path, erasures, folders=folders, passphrase=passphrase)
    holding = [c for c in checks if (erased in c.holds if erased else c.holds)]
    for check in holding:
        said = t("rewritten without them and verified") if check.purged else t("still holds them")
        click.echo(f"  {check.path}: {said}")
    if holding and not purge:
        click.echo(t("These backups and kept copies still hold the person; `crm forget --purge-backups` rewrites them."))
    for check in checks:
        if check.problem:
            click.echo(f"  {check.path}: " + t("not checked: {problem}", problem=check.problem))
    if purge and not any(c.problem for c in checks):
        click.echo(t("Checked {count} backups and kept copies; none holds an erased person any more.",
                     count=len(checks)))


@main.command(name="schema-doc")
@click.option("--check", is_flag=True, help="Fail if docs/data-model.md is out of date.")
def schema_doc(check: bool) -> None:
    """Write docs/data-model.md from the schema."""
    from crm_helpers.store.schema import data_model_markdown

    path = config.PROJECT_ROOT / "docs" / "data-model.md"
    text = data_model_markdown()
    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            raise Refused(t("{path} is out of date: run `crm schema-doc`", path=path))
        return
    from crm_helpers.store.files import write_text

    write_text(path, text, file_mode=0o644)  # a document of the repository, readable like the others
    click.echo(t("wrote {path}", path=path))


def _share(text: str) -> float:
    """'10%', '10' or '0.1' as a share 0–1 (a bare number above 1 is read as per cent)."""
    try:
        value = float(text.strip().rstrip("%").strip())
    except ValueError:
        raise click.BadParameter(t("{text} is not a share; write it like 10%", text=repr(text)),
                                 param_hint="--win-back") from None
    return value / 100 if text.strip().endswith("%") or value > 1 else value


@main.command(name="plan")
@db_option
@click.option("--month", default=None, help="YYYY-MM, or 'previous' (default: latest complete month of data).")
@click.option("--win-back", "win_back", default="0%", help="Share of the customers probably lost won back, e.g. 10%.")
@click.option("--repeat", "repeat_points", default=0.0, type=float,
              help="Points added to the repeat rate of the month's first-time buyers, e.g. +5.")
@click.option("--stop-campaign", default=None, help="Name (or id) of a campaign to stop.")
@click.option("--page/--no-page", default=True, help="Also render page 07 into the month's pack (a few seconds).")
def plan_cmd(db_path: Path | None, month: str | None, win_back: str, repeat_points: float,
             stop_campaign: str | None, page: bool) -> None:
    """Print what an action is worth over the next 12 months, with its 80 % range, and render page 07."""
    from crm_helpers.analyses.plan import PlanError, plan_effect

    db = _open(db_path, writing=False)
    period = _resolve_month(db, month)
    _check_has_data(db, period)
    share = _share(win_back)
    try:
        result = plan_effect(db, as_of=period.end, since=period.start, win_back=share,
                             repeat_points=repeat_points, stop_campaign=stop_campaign)
    except PlanError as exc:
        raise Refused(str(exc)) from None
    if not result.ok:
        raise Refused(result.message)
    if len(result.parts) > 1:
        click.echo(t("{sentence} Together: about {effect} (80 % range {span}).", sentence=result.sentence,
                     effect=money(result.effect, result.currency, signed=True),
                     span=money_span(result.low, result.high, currency=result.currency, signed=True)))
    else:
        click.echo(result.sentence)
    if page:
        from crm_helpers.report.runner import ReportError, render_report

        overrides = {"win_back": share, "repeat_points": repeat_points, "stop_campaign": stop_campaign or ""}
        try:
            rendered = render_report(_db_path(db_path), period, only=["07"], overrides=overrides, progress=False)
        except ReportError as exc:
            raise Refused(str(exc)) from None
        if not rendered.ok:
            raise Refused(t("the plan page could not be rendered; see {index}", index=rendered.index))


if __name__ == "__main__":
    main()
