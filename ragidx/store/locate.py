"""Which store an index location names, and opening it: a `postgresql://` (or `postgres://`)
URL is a `PostgresStore`, anything else a SQLite file (`SqliteStore`).

The Postgres package is imported only here, and only for a URL: psycopg and pgvector come
with the `postgres` extra, which a SQLite user never needs. Raises `StoreError` (a missing
extra included, with the command that installs it)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragidx.config import is_postgres_url
from ragidx.errors import StoreError
from ragidx.store.lock import writer_lock
from ragidx.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from ragidx.store.base import Store

__all__ = ["is_postgres_url", "open_for_reading", "open_index", "run_lock"]


def _postgres() -> Any:
    try:
        from ragidx.store import postgres
    except ImportError as exc:
        raise StoreError(
            f"a Postgres index needs the postgres extra ({exc.name or exc} is not installed)",
            hint="pip install 'ragidx[postgres]' (or: uv sync --extra postgres)",
        ) from exc
    return postgres


def open_index(where: str | Path, *, create: bool = True) -> Store:
    """The index at `where` for writing, made where missing (`create`)."""
    if is_postgres_url(where):
        store: Store = _postgres().PostgresStore.open(str(where), create=create)
        return store
    return SqliteStore.open(Path(where), create=create)


def open_for_reading(where: str | Path) -> Store:
    """The index at `where` for commands that only read (search, stats, export)."""
    if is_postgres_url(where):
        store: Store = _postgres().PostgresStore.open_for_reading(str(where))
        return store
    return SqliteStore.open_for_reading(Path(where))


@contextlib.asynccontextmanager
async def run_lock(
    where: str | Path,
    shard: str | None,
    *,
    wait: bool,
    on_wait: Callable[[str | None], None],
    give_up: Callable[[], bool] = lambda: False,
) -> AsyncIterator[None]:
    """Hold what keeps two runs off the same files: SQLite's one-writer file lock; on
    Postgres, the index's advisory locks (a shard's own part, shared with other parts)."""
    if is_postgres_url(where):
        lock = _postgres().run_lock(str(where), shard, wait=wait, on_wait=on_wait, give_up=give_up)
    else:
        lock = writer_lock(Path(where), wait=wait, on_wait=on_wait, give_up=give_up)
    async with lock:
        yield
