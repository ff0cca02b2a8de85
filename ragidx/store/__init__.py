"""Where chunks and vectors live. SQLite today; the seam is `SqliteStore`'s public methods."""

from __future__ import annotations

from .footprint import Footprint
from .lock import lock_path, writer_lock
from .migrations import SCHEMA_VERSION, embedding_key
from .sqlite import (
    ChunkRow,
    Embeddings,
    FileRecord,
    FileWrite,
    SqliteStore,
    Staged,
    Write,
)
from .stamps import DirStamp, Stamp, listing_digest

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
