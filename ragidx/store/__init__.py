"""Where chunks and vectors live. SQLite today; the seam is `SqliteStore`'s public methods."""

from __future__ import annotations

from .migrations import SCHEMA_VERSION
from .sqlite import ChunkRow, FileRecord, FileWrite, SqliteStore

__all__ = ["SCHEMA_VERSION", "ChunkRow", "FileRecord", "FileWrite", "SqliteStore"]
