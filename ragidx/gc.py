"""`ragidx gc`: drop cached vectors no chunk uses, and big files a killed run left staged."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .store import SqliteStore, writer_lock

__all__ = ["GcResult", "collect_garbage"]


@dataclass(frozen=True, slots=True)
class GcResult:
    vectors: int
    staged: int
    bytes_before: int
    bytes_after: int


async def collect_garbage(
    db: Path, *, vacuum: bool, on_wait: Callable[[str | None], None]
) -> GcResult:
    """Holds the writer lock, so no run is using the cache while vectors go."""
    store = await asyncio.to_thread(SqliteStore.open, db, create=False)
    try:
        async with writer_lock(db, wait=True, on_wait=on_wait):
            before = _size(db)
            staged = await asyncio.to_thread(store.drop_staged)
            vectors = await asyncio.to_thread(store.gc)
            if vacuum:
                await asyncio.to_thread(store.vacuum)
            return GcResult(vectors, staged, before, _size(db))
    finally:
        store.close()


def _size(db: Path) -> int:
    return sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if os.path.exists(p))
