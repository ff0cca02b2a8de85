"""Opening an index file: the connection's settings, the schema brought up to date, and a
read-only connection where the index cannot be written."""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

from ragidx.chunk.tokens import space_cjk
from ragidx.errors import StoreError
from ragidx.store.damage import store_error
from ragidx.store.migrations import SCHEMA_VERSION, migrate, schema_version

__all__ = [
    "BUSY_TIMEOUT_MS",
    "WAL_LIMIT_BYTES",
    "connect",
    "connect_for_reading",
    "connect_read_only",
    "connect_uri",
]

BUSY_TIMEOUT_MS = 30_000
WAL_LIMIT_BYTES = 64 * 1024 * 1024


def connect(path: Path, *, create: bool = True, upgrade: bool = True) -> sqlite3.Connection:
    """A connection to the index at `path` (with `create`, made where missing), its schema
    migrated; or, without `upgrade`, read only, refusing a schema that needs migrating.
    Raises `StoreError`."""
    if not create and not os.path.exists(path):
        raise StoreError(f"no index at {path}", hint="run `ragidx index PATH` first, or pass --db")
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the index {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not upgrade:
            conn.execute("PRAGMA query_only = ON")  # not even the journal mode changes
        else:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # After a checkpoint the WAL file shrinks back to this; it is rewritten, not grown.
        conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.create_function("space_cjk", 1, space_cjk, deterministic=True)
        if upgrade:
            migrate(conn)
        elif (version := schema_version(conn)) != SCHEMA_VERSION:
            raise StoreError(
                f"the index {path} has schema version {version}, not {SCHEMA_VERSION}",
                hint="index once without --dry-run to upgrade it",
            )
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(path, exc, "cannot use") from exc
    except StoreError:
        conn.close()
        raise
    return conn


def connect_for_reading(path: Path) -> sqlite3.Connection:
    """For commands that only read. Where the index and its directory can be written, as
    `connect`; where not (a CI artifact, a container image, a read-only mount), read-only,
    without the `-shm` file SQLite could not create there. Raises `StoreError`."""
    if not os.path.exists(path) or _writable(path):
        return connect(path, create=False)
    conn = connect_read_only(path)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = ON")
        conn.create_function("space_cjk", 1, space_cjk, deterministic=True)
        if (version := schema_version(conn)) != SCHEMA_VERSION:
            raise StoreError(
                f"the index {path} has schema version {version}, not {SCHEMA_VERSION},"
                " and cannot be upgraded where it is read-only",
                hint="run any ragidx command on it once where it can be written",
            )
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(path, exc, "cannot use") from exc
    except StoreError:
        conn.close()
        raise
    return conn


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to an index SQLite may not write beside. Reading a WAL needs
    its `-shm` file, which SQLite can use read-only where it exists but cannot create here;
    without a WAL there is nothing to miss, and the file is opened as immutable."""
    wal = Path(f"{path}-wal")
    try:
        wal_bytes = wal.stat().st_size
    except FileNotFoundError:
        # No connection has the index open (the last one to close removes the WAL): no
        # writer can be changing it under an immutable reader.
        return connect_uri(path, "mode=ro&immutable=1")
    conn = connect_uri(path, "mode=ro")
    try:
        schema_version(conn)  # the first read opens the WAL, and its -shm
        return conn
    except sqlite3.Error as exc:
        conn.close()
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_CANTOPEN":
            raise store_error(path, exc, "cannot use") from exc
        if wal_bytes == 0:
            return connect_uri(path, "mode=ro&immutable=1")  # a WAL left empty
        raise StoreError(
            f"cannot read the index {path}: its last changes are in {wal}, which SQLite"
            f" reads only with a {path}-shm file, and cannot create one here",
            hint="open the index once where it can be written (any ragidx command folds the"
            " WAL in), or copy the index with its -wal file to a writable directory",
        ) from exc


def connect_uri(path: Path, query: str) -> sqlite3.Connection:
    """A connection by URI (`mode=ro`, `immutable=1`); raises `StoreError`."""
    uri = "file:" + urllib.parse.quote(os.fsencode(os.path.abspath(path))) + "?" + query
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise store_error(path, exc, "cannot open") from exc
