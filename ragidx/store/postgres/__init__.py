"""The Postgres + pgvector index: `PostgresStore`, chosen by a `postgresql://` URL, for many
workers on one index (`run_lock`)."""

from __future__ import annotations

from ragidx.store.postgres.connect import is_postgres_url

__all__ = ["is_postgres_url"]
