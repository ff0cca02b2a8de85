"""`ragidx gc`: drop the cached vectors no chunk uses.

What a run paid for and a file still needs stays, held for the file until it is indexed,
skipped, removed or gone: the parts of a big file that a killed run staged, and the chunks of
a failed file whose vectors came back. `stats` counts as unused exactly what `gc` drops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragidx.store import Store, writer_lock
from ragidx.store.locate import is_postgres_url, open_index

__all__ = ["GcResult", "collect_garbage"]


@dataclass(frozen=True, slots=True)
class GcResult:
    vectors: int
    """Cached vectors dropped."""
    held: int
    """Cached vectors kept for files not yet indexed (staged parts, failed files)."""
    bytes_before: int
    bytes_after: int
    """The database file's size, its WAL copied in, before and after."""
    free_bytes: int
    """Free pages inside the file after: reused by later writes, given back by a vacuum."""


async def collect_garbage(
    db: Path | str, *, vacuum: bool, on_wait: Callable[[str | None], None]
) -> GcResult:
    """Holds the writer lock (SQLite), so no run is using the cache while vectors go; on
    Postgres runs go on, and each drop waits out the groups in flight (`PostgresStore.gc`)."""
    store: Store = await asyncio.to_thread(open_index, db, create=False)
    lock: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
    if not is_postgres_url(db):
        lock = writer_lock(Path(db), wait=True, on_wait=on_wait)
    try:
        async with lock:
            before, _ = await asyncio.to_thread(store.file_bytes)
            # A killed run's parts become held; what is held for files gone goes.
            await asyncio.to_thread(store.drop_staged)
            vectors = await asyncio.to_thread(store.gc)
            if vacuum:
                await asyncio.to_thread(store.vacuum)
            after, free = await asyncio.to_thread(store.file_bytes)
            held = await asyncio.to_thread(store.held_vectors)
            return GcResult(vectors, held, before, after, free)
    finally:
        store.close()
