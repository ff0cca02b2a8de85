"""Opening a Postgres index: the URL (`postgresql://` or `postgres://`, with ragidx's own
`schema` query parameter), one connection with its `search_path` on the index's schema and
pgvector's, the schema migrated; and errors turned into `StoreError` without the password.

In: a URL as the user gave it. Out: an open `psycopg.Connection` in autocommit mode (every
transaction is explicit: `with conn.transaction()`), or `StoreError` with a hint (no server,
no pgvector, a schema that needs migrating where the caller may not).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from ragidx.errors import StoreError
from ragidx.redact import Redactor, without_credentials
from ragidx.store.postgres.migrations import SCHEMA_VERSION, lock_key, migrate, schema_version

__all__ = [
    "COMMIT_ATTEMPTS",
    "DEFAULT_SCHEMA",
    "Target",
    "connect",
    "is_postgres_url",
    "pg_error",
    "retried",
    "target",
]

DEFAULT_SCHEMA = "ragidx"
COMMIT_ATTEMPTS = 3
_BACKOFF_SECONDS = 0.2
_SCHEMES = ("postgresql", "postgres")
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

Conn = psycopg.Connection[tuple[object, ...]]


def is_postgres_url(text: str) -> bool:
    """Whether `--db` names a Postgres index rather than a SQLite file."""
    return text.split("://", 1)[0].lower() in _SCHEMES and "://" in text


@dataclass(frozen=True, slots=True)
class Target:
    """Where an index is: what psycopg connects to, the schema, and what messages show."""

    conninfo: str
    """The URL without ragidx's own parameters: for psycopg only, never shown."""
    schema: str
    location: str
    """The URL without its password (nor user-info at all), with the schema: for messages."""
    redact: Redactor


def target(url: str) -> Target:
    """Read an index URL; `StoreError` for one that is not a Postgres URL or names a schema
    that is not a plain identifier."""
    if not is_postgres_url(url):
        raise StoreError(f"not a Postgres URL: {without_credentials(url)}")
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not _SCHEMA_NAME.fullmatch(schema):
        raise StoreError(
            f"the schema {schema!r} in the index URL is not a plain name",
            hint="use letters, digits and _ (up to 63), not starting with a digit",
        )
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    conninfo = urlunsplit(parts._replace(query=rest))
    shown = _without_password(parts)
    return Target(conninfo, schema, shown, Redactor.of(urls=[url]))


def _without_password(parts: SplitResult) -> str:
    """The URL with its user name but not its password: who and where, for messages."""
    if "@" not in parts.netloc:
        return urlunsplit(parts)
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def pg_error(where: Target, exc: BaseException, doing: str = "cannot use") -> StoreError:
    """A psycopg error as `StoreError`: the index named without a password, the server's
    words redacted (a message may repeat the connection string)."""
    words = where.redact(
        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    )
    hint = None
    if isinstance(exc, psycopg.OperationalError) and "connect" in str(exc).lower():
        hint = "check that the server runs, and the URL's host, port, user and database"
    return StoreError(f"{doing} the index {where.location}: {words}", hint=hint)


class _Reconnecting(Protocol):
    conn: Conn
    target: Target

    def reconnect(self) -> None: ...


def retried(
    call: Callable[[], None],
    store: _Reconnecting,
    failed: Callable[[psycopg.Error], StoreError],
) -> None:
    """`call()` (a group's transaction), again up to `COMMIT_ATTEMPTS` times in all where
    the connection is lost or the group loses a deadlock: the server rolled it back whole,
    so sending it again can neither half-commit it nor apply it twice. `failed` maps the
    last error (and reconnects for the next call, where it can)."""
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            call()
            return
        except psycopg.OperationalError as exc:
            if attempt == COMMIT_ATTEMPTS:
                failed(exc)
                raise pg_error(
                    store.target, exc, f"gave up after {attempt} tries to write"
                ) from exc
            time.sleep(_BACKOFF_SECONDS * 2 ** (attempt - 1))
            if store.conn.broken or store.conn.closed:
                store.reconnect()


def connect(where: Target, *, create: bool = True, upgrade: bool = True) -> Conn:
    """An autocommit connection to the index, its schema migrated (with `create`: made where
    missing; without `upgrade`: refused where it needs migrating)."""
    try:
        conn: Conn = psycopg.connect(where.conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise pg_error(where, exc, "cannot connect to") from exc
    try:
        _search_path(conn, where)
        version = schema_version(conn, where.schema)
        if version == 0 and not create:
            raise StoreError(
                f"no index at {where.location}",
                hint="index a folder into it first (`ragidx index ... --db URL`)",
            )
        if version != SCHEMA_VERSION:
            if not upgrade:
                raise StoreError(
                    f"the index {where.location} has schema version {version}; this ragidx "
                    f"reads version {SCHEMA_VERSION}",
                    hint="run `ragidx index` or `ragidx gc` once to upgrade it",
                )
            migrate(conn, where.schema)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, psycopg.Error):
            raise pg_error(where, exc, "cannot open") from exc
        raise
    return conn


def _search_path(conn: Conn, where: Target) -> None:
    """The index's schema first, then pgvector's (its `vector` type and operators), made
    where missing; vectors then read as numpy arrays."""
    extension = _vector_schema(conn)
    if extension is None:
        try:
            with conn.transaction():
                # Workers that start together on a new database: one creates it.
                conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (lock_key("", "vector"),))
                # In `public`, not the index's schema: several indexes of a database share it.
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        except psycopg.Error as exc:
            raise StoreError(
                f"the database of {where.location} has no pgvector, and it cannot be added:"
                f" {where.redact(_first_line(exc))}",
                hint="install pgvector on the server, and run `CREATE EXTENSION vector` as a"
                " superuser in that database",
            ) from exc
        extension = _vector_schema(conn) or "public"
    conn.execute(
        sql.SQL("SET search_path = {}, {}").format(
            sql.Identifier(where.schema), sql.Identifier(extension)
        )
    )
    # psycopg prepares a statement run 5 times, and Postgres may then settle on one generic
    # plan, costed while the tables were new and their statistics empty: a sequential scan
    # of `embeddings` to find a key, kept until autovacuum's next ANALYZE. Measured
    # (bench/workers.py, 14,366 chunks, no HNSW build): 4 of 8 two-worker loads stuck, up to
    # 28,846 scans read up to 217 million rows, and the load took 8.9-10.6 s instead of
    # 5.6-5.7 s. A plan made for each execution: 0 of 22 loads of 1, 2 or 4 workers stuck,
    # for ~0.7 s more of the server's CPU over those chunks.
    conn.execute("SET plan_cache_mode = force_custom_plan")
    register_vector(conn)


def _vector_schema(conn: Conn) -> str | None:
    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'vector'"
    ).fetchone()
    return None if row is None else str(row[0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
