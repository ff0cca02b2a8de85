"""Keeping a Postgres index in shape: the cached vectors no chunk uses (counted by `stats`,
dropped by `gc`), those held for files not yet indexed, the index's size, and `VACUUM`.

In: an autocommit connection from `connect`. `drop_unused` runs in the caller's transaction,
which holds the gc lock (every commit takes it shared), so no vector a concurrent group has
just cached goes. Errors: psycopg's own, which `PostgresStore` turns into `StoreError`.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

__all__ = ["count_unused", "drop_unused", "file_bytes", "held_vectors", "vacuum"]

Conn = psycopg.Connection[tuple[Any, ...]]

_UNUSED = "NOT EXISTS (SELECT 1 FROM chunks c WHERE c.embedding_id = e.id)"
"""SQL: the cached vector `e` is one no chunk refers to (a held or staged chunk counts)."""

# The index's own tables: those of the schema first on the search path. A table's total
# size counts its indexes (HNSW, GIN) and its TOAST.
_TABLES = (
    "SELECT c.oid, c.relname FROM pg_class c"
    " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
)


def count_unused(conn: Conn) -> int:
    """How many cached vectors no chunk uses: what `drop_unused` would drop."""
    row = conn.execute(f"SELECT count(*) FROM embeddings e WHERE {_UNUSED}").fetchone()
    return int(row[0]) if row else 0


def drop_unused(conn: Conn) -> int:
    """Delete the cached vectors no chunk uses; returns how many went."""
    return conn.execute(f"DELETE FROM embeddings e WHERE {_UNUSED}").rowcount


def held_vectors(conn: Conn) -> int:
    """Cached vectors that only chunks no search sees use: paid for, kept for files not yet
    indexed (a big file's staged parts, a failed file's held chunks)."""
    row = conn.execute(
        "SELECT count(DISTINCT c.embedding_id) FROM chunks c"
        " WHERE NOT c.visible AND c.embedding_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM chunks o WHERE o.embedding_id = c.embedding_id AND o.visible)"
    ).fetchone()
    return int(row[0]) if row else 0


def file_bytes(conn: Conn) -> tuple[int, int]:
    """The index's size on the server (its tables with their indexes and TOAST), and an
    estimate of how much of it dead rows hold: each table's share of dead rows in the
    server's statistics (`pg_stat_user_tables`, updated within a second or so, not at
    once) times its size. Autovacuum makes that space reusable; `vacuum` does it now."""
    row = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(t.oid)), 0),"
        " coalesce(sum(CASE WHEN s.n_live_tup + s.n_dead_tup > 0"
        "  THEN pg_relation_size(t.oid) * s.n_dead_tup / (s.n_live_tup + s.n_dead_tup)"
        "  ELSE 0 END), 0)"
        f" FROM ({_TABLES}) t LEFT JOIN pg_stat_user_tables s ON s.relid = t.oid"
    ).fetchone()
    if row is None:
        return 0, 0
    return int(row[0]), int(row[1])


def vacuum(conn: Conn) -> None:
    """`VACUUM (ANALYZE)` each of the index's tables: dead rows' space is reusable again and
    the planner's statistics are fresh. Space goes back to the file system only from the
    end of a table (`VACUUM FULL`, which locks the table out, is left to the user). Runs
    outside a transaction: the connection must be in autocommit mode and not in one."""
    row = conn.execute("SELECT current_schema()").fetchone()
    schema = sql.Identifier(str(row[0]) if row else "")
    for _, name in conn.execute(_TABLES).fetchall():
        table = sql.Identifier(str(name))
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}.{}").format(schema, table))
