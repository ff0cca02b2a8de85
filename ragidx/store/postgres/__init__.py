"""The Postgres + pgvector index: `PostgresStore`, chosen by a `postgresql://` URL, and
`run_lock`, which keeps two runs from indexing the same files of it at once.

Needs the `postgres` extra (`pip install 'ragidx[postgres]'`): psycopg, psycopg-pool and
pgvector are imported here, so only code that opens a Postgres index imports this package.
"""

from __future__ import annotations

from ragidx.store.postgres.connect import is_postgres_url
from ragidx.store.postgres.lock import run_lock
from ragidx.store.postgres.store import PostgresStore

__all__ = ["PostgresStore", "is_postgres_url", "run_lock"]
