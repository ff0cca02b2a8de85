"""Where chunks and vectors live: the `Store` seam (`base`), and SQLite behind it today
(`SqliteStore`), one module per concern."""

from __future__ import annotations

from ragidx.store.base import (
    ChunkRow,
    Embeddings,
    FileRecord,
    FileWrite,
    RunRecord,
    Staged,
    Store,
    StoreStats,
    Write,
)
from ragidx.store.cache import embedding_key
from ragidx.store.footprint import Footprint
from ragidx.store.lock import lock_path, writer_lock
from ragidx.store.migrations import SCHEMA_VERSION
from ragidx.store.sqlite import SqliteStore
from ragidx.store.stamps import DirStamp, Stamp, listing_digest

__all__ = [
    "SCHEMA_VERSION",
    "ChunkRow",
    "DirStamp",
    "Embeddings",
    "FileRecord",
    "FileWrite",
    "Footprint",
    "RunRecord",
    "SqliteStore",
    "Staged",
    "Stamp",
    "Store",
    "StoreStats",
    "Write",
    "embedding_key",
    "listing_digest",
    "lock_path",
    "writer_lock",
]
