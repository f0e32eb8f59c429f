"""Back up and restore the database: `flask db-backup FILE` and `flask db-restore FILE`.

SQLite: Python's `sqlite3.Connection.backup` copies a consistent snapshot page by page while
the app keeps running (WAL mode lets its writers carry on); the copy is one self-contained file.
PostgreSQL: `pg_dump --format=custom` and `pg_restore` (found on PATH, in PG_BIN, or under
/usr/lib/postgresql/<version>/bin); the password travels in PGPASSWORD, never on a command line.

A restore refuses to overwrite a database that holds data unless it is forced.
"""

import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import URL, make_url

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"
# Tables whose rows do not count as data: a freshly migrated database has one row here.
BOOKKEEPING_TABLES = frozenset({"alembic_version"})


class BackupError(RuntimeError):
    """A backup or restore could not be done; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    """What a backup or restore did: the database kind, the file, and rows per table."""

    kind: str
    path: Path
    rows: dict[str, int]


# ---------------------------------------------------------------- shared helpers


def backend_of(url: str | URL) -> str:
    """ "sqlite" or "postgresql" for a database URL (anything else is refused)."""
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {name}.")
    return name


def sqlite_path(url: str | URL) -> Path:
    """The file of a SQLite URL (an in-memory database has none and is refused)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise BackupError("An in-memory SQLite database cannot be backed up or restored.")
    return Path(database)


def sqlite_row_counts(path: Path) -> dict[str, int]:
    """Rows per table of a SQLite file, read with sqlite3 itself (no pragmas changed)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = sorted(
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        )
        quoted = {name: '"' + name.replace('"', '""') + '"' for name in names}
        return {
            name: connection.execute(f"SELECT count(*) FROM {quoted[name]}").fetchone()[0]
            for name in names
        }
    finally:
        connection.close()


def row_counts(url: str | URL) -> dict[str, int]:
    """Rows per table of the database at `url`, tables in name order."""
    if backend_of(url) == "sqlite":
        return sqlite_row_counts(sqlite_path(url))
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = sorted(inspect(connection).get_table_names())
            counts = {}
            for name in names:
                quoted = connection.dialect.identifier_preparer.quote(name)
                counts[name] = connection.execute(
                    select(text("count(*)")).select_from(text(quoted))
                ).scalar_one()
            return counts
    finally:
        engine.dispose()


def holds_data(counts: dict[str, int]) -> bool:
    """Whether any table other than the migration bookkeeping has a row."""
    return any(rows for name, rows in counts.items() if name not in BOOKKEEPING_TABLES)


def file_kind(path: Path) -> str:
    """ "sqlite" or "postgresql" from a backup file's first bytes."""
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_CUSTOM_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is neither a SQLite database nor a pg_dump custom-format archive.")


def _replace_atomically(written: Path, target: Path) -> None:
    """Move a finished temporary file over `target`, so a half-written backup never shows."""
    os.replace(written, target)


def _temporary_beside(target: Path, suffix: str) -> Path:
    """An empty temporary file in `target`'s folder (same file system: the rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(handle)
    return Path(name)


# ---------------------------------------------------------------- SQLite


def backup_sqlite(url: str | URL, target: Path) -> Path:
    """Copy the SQLite database at `url` to `target` with the online backup API."""
    source_path = sqlite_path(url)
    if not source_path.is_file():
        raise BackupError(f"There is no SQLite database at {source_path}.")
    partial = _temporary_beside(target, ".partial")
    try:
        source = sqlite3.connect(source_path, timeout=30)
        copy = sqlite3.connect(partial)
        try:
            # One step (pages=-1): a consistent snapshot; WAL lets the app write meanwhile.
            source.backup(copy)
            # The copy should be one self-contained file, not a WAL database with side files.
            copy.execute("PRAGMA journal_mode=DELETE")
            verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            copy.close()
            source.close()
        if verdict != "ok":
            raise BackupError(f"The copy failed SQLite's integrity check: {verdict}")
        _replace_atomically(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def restore_sqlite(source: Path, url: str | URL) -> None:
    """Write the SQLite backup `source` into the database at `url`, replacing its content."""
    target_path = sqlite_path(url)
    check = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as problem:
        raise BackupError(f"{source} is not a readable SQLite database: {problem}") from None
    finally:
        check.close()
    if verdict != "ok":
        raise BackupError(f"{source} failed SQLite's integrity check: {verdict}")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    backup_file = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    live = sqlite3.connect(target_path, timeout=30)
    try:
        # The backup API writes through SQLite's locks (WAL and -shm stay consistent),
        # which copying the file over a database in use would not.
        backup_file.backup(live)
        live.execute("PRAGMA journal_mode=WAL")
    finally:
        live.close()
        backup_file.close()


# ---------------------------------------------------------------- PostgreSQL


def pg_tool(name: str) -> str:
    """The path of pg_dump or pg_restore: PG_BIN, then PATH, then the newest Debian install."""
    folder = os.environ.get("PG_BIN")
    if folder and (Path(folder) / name).is_file():
        return str(Path(folder) / name)
    found = shutil.which(name)
    if found:
        return found
    installed = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if installed:
        return str(installed[-1])
    raise BackupError(f"{name} was not found: install the PostgreSQL client or set PG_BIN.")


def libpq_target(url: str | URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment carrying it."""
    parsed = make_url(url)
    parts = {
        "host": parsed.host,
        "port": str(parsed.port) if parsed.port else None,
        "user": parsed.username,
        "dbname": parsed.database,
    }
    for key, value in parsed.query.items():
        parts[key] = value if isinstance(value, str) else value[-1]
    conninfo = " ".join(
        f"{key}='{value.replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}'"
        for key, value in parts.items()
        if value
    )
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return conninfo, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    """Run a PostgreSQL client tool; a failure becomes a BackupError with its message."""
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip()
        raise BackupError(f"{what} failed: {message}")


def backup_postgresql(url: str | URL, target: Path) -> Path:
    """Dump the PostgreSQL database at `url` to `target` (pg_dump custom format)."""
    conninfo, env = libpq_target(url)
    partial = _temporary_beside(target, ".partial")
    try:
        # No owners or grants: the dump restores into a database owned by another role.
        command = [pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges"]
        _run([*command, f"--file={partial}", f"--dbname={conninfo}"], env, "pg_dump")
        _replace_atomically(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def restore_postgresql(source: Path, url: str | URL) -> None:
    """Restore the pg_dump archive `source` into the database at `url`, in one transaction."""
    conninfo, env = libpq_target(url)
    command = [
        pg_tool("pg_restore"),
        "--clean",  # drop the objects the archive holds before recreating them
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",  # all or nothing: a failed restore leaves the old data
        "--exit-on-error",
        f"--dbname={conninfo}",
        str(source),
    ]
    _run(command, env, "pg_restore")


# ---------------------------------------------------------------- the two operations


def backup_database(url: str | URL, target: str | Path) -> Outcome:
    """Back up the database at `url` into the file `target`; the rows it holds."""
    target = Path(target).resolve()
    kind = backend_of(url)
    if kind == "sqlite":
        backup_sqlite(url, target)
        rows = sqlite_row_counts(target)
    else:
        backup_postgresql(url, target)
        rows = row_counts(url)  # pg_dump's snapshot; counts of the live database
    return Outcome(kind, target, rows)


def restore_database(url: str | URL, source: str | Path, force: bool = False) -> Outcome:
    """Restore the backup file `source` into the database at `url` (refuses data without force)."""
    source = Path(source).resolve()
    if not source.is_file():
        raise BackupError(f"There is no backup file {source}.")
    kind = backend_of(url)
    found = file_kind(source)
    if found != kind:
        raise BackupError(f"{source} is a {found} backup; this database is {kind}.")
    exists = kind == "postgresql" or sqlite_path(url).is_file()
    if exists and not force:
        counts = row_counts(url)
        if holds_data(counts):
            filled = ", ".join(f"{name}: {rows}" for name, rows in counts.items() if rows)
            raise BackupError(
                f"The database is not empty ({filled}); restore with --force to replace it."
            )
    if kind == "sqlite":
        restore_sqlite(source, url)
    else:
        restore_postgresql(source, url)
    return Outcome(kind, source, row_counts(url))


# ---------------------------------------------------------------- flask commands


def _summary(rows: dict[str, int]) -> str:
    """ "3 tables, 120 rows (answer 80, user 12, ...)" for a report line."""
    listed = ", ".join(f"{name} {count}" for name, count in rows.items() if count)
    return f"{len(rows)} tables, {sum(rows.values())} rows ({listed or 'empty'})"


def _engine_url() -> str:
    """The application's database URL (refuses per-connection options a dump cannot follow)."""
    options = current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
    if "options" in (options.get("connect_args") or {}):
        raise BackupError("A search_path given in connect_args is not supported by backups.")
    url: str = current_app.config["SQLALCHEMY_DATABASE_URI"]
    return url


@click.command("db-backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(file: Path) -> None:
    """Back up the database into FILE (SQLite: online copy; PostgreSQL: pg_dump custom format)."""
    try:
        outcome = backup_database(_engine_url(), file)
    except BackupError as problem:
        raise click.ClickException(str(problem)) from None
    size = outcome.path.stat().st_size
    click.echo(f"Backed up the {outcome.kind} database to {outcome.path} ({size} bytes).")
    click.echo(_summary(outcome.rows))


@click.command("db-restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
@with_appcontext
def restore_command(file: Path, force: bool) -> None:
    """Restore the database from FILE, a backup made by `flask db-backup` (stop the app first)."""
    from app.extensions import db

    try:
        # Our own pooled connections would hold locks (SQLite) or see dropped tables.
        db.engine.dispose()
        outcome = restore_database(_engine_url(), file, force=force)
    except BackupError as problem:
        raise click.ClickException(str(problem)) from None
    click.echo(f"Restored the {outcome.kind} database from {outcome.path}.")
    click.echo(_summary(outcome.rows))
    click.echo("If the backup is older than this code, run `flask db upgrade` now.")
