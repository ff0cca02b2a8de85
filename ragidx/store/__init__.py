"""Where chunks and vectors live. SQLite today; the seam is `SqliteStore`'s public methods."""

from __future__ import annotations

from ragidx.store.footprint import Footprint
from ragidx.store.lock import lock_path, writer_lock
from ragidx.store.migrations import SCHEMA_VERSION, embedding_key
from ragidx.store.sqlite import (
    ChunkRow,
    Embeddings,
    FileRecord,
    FileWrite,
    SqliteStore,
    Staged,
    Write,
)
from ragidx.store.stamps import DirStamp, Stamp, listing_digest

__all__ = [
    "SCHEMA_VERSION",
    "ChunkRow",
    "DirStamp",
    "Embeddings",
    "FileRecord",
    "FileWrite",
    "Footprint",
    "SqliteStore",
    "Staged",
    "Stamp",
    "Write",
    "embedding_key",
    "listing_digest",
    "lock_path",
    "writer_lock",
]
