"""A file's rows: its `files` row, its chunks, and their full-text rows, written and
dropped together. Every function runs inside the caller's transaction."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from ragidx.chunk.tokens import space_cjk
from ragidx.errors import StoreError
from ragidx.models import Chunk
from ragidx.store.base import FileWrite

__all__ = [
    "FILE_SET",
    "IN_LIMIT",
    "chunk_values",
    "drop_chunks",
    "drop_file",
    "file_values",
    "index_text",
    "insert_chunks",
]

IN_LIMIT = 500
"""Values per `IN (...)` query, well below SQLite's limit on a statement's variables."""

FILE_SET = (
    "path = ?, dir = ?, size = ?, mtime_ns = ?, content_hash = ?, status = ?, reason = ?,"
    " encoding = ?, format = ?, chunking = ?, chunks = ?, tokens = ?, run_id = ?, updated_at = ?,"
    " unit = ?, pages = ?"
)
"""`UPDATE files SET` for `file_values`."""


def file_values(w: FileWrite, run_id: int, now: float) -> tuple[Any, ...]:
    """A file's row: `files`' columns from `path` to `updated_at`, then `unit`, `pages`."""
    return (
        w.path,
        os.path.dirname(w.path),
        w.size,
        w.mtime_ns,
        w.content_hash,
        w.status.value,
        w.reason,
        w.encoding,
        w.format,
        w.chunking,
        w.chunk_count,
        w.token_count,
        run_id,
        now,
        w.unit,
        w.pages,
    )


def _json_path(path: tuple[str, ...]) -> str:
    return json.dumps(path, ensure_ascii=False)


_CHUNK_INSERT = (
    "INSERT INTO chunks (file_id, ordinal, text, input, char_start, char_end, line_start,"
    " line_end, heading_path, tokens, page_start, page_end, embedding_id)"
)


def chunk_values(
    c: Chunk, heading_path: Callable[[tuple[str, ...]], Any] = _json_path
) -> tuple[Any, ...]:
    """A chunk's columns from `text` to `page_end`, in `_CHUNK_INSERT`'s order, on both
    stores: the input only where it differs from the text; the heading path as
    `heading_path` encodes it (SQLite: JSON text; Postgres: jsonb)."""
    return (
        c.text,
        None if c.input == c.text else c.input,
        c.char_start,
        c.char_end,
        c.line_start,
        c.line_end,
        heading_path(c.heading_path),
        c.tokens,
        c.page_start,
        c.page_end,
    )


def insert_chunks(
    conn: sqlite3.Connection, file_id: int, chunks: list[Chunk], keys: list[bytes]
) -> None:
    """The chunks' rows, each tied to its cached vector by key (NULL where not cached)."""
    conn.executemany(
        f"{_CHUNK_INSERT} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " (SELECT id FROM embeddings WHERE key = ?))",
        [(file_id, c.ordinal, *chunk_values(c), key) for c, key in zip(chunks, keys, strict=True)],
    )


def index_text(
    conn: sqlite3.Connection,
    file_id: int,
    from_ordinal: int = 0,
    texts: Sequence[str] | None = None,
) -> None:
    """Full-text rows for a file's new chunks; every chunk must have its cached vector.
    `texts`: those chunks' texts in order, where the caller has them at hand."""
    where = "file_id = ? AND ordinal >= ?"
    (missing,) = conn.execute(
        f"SELECT count(*) FROM chunks WHERE {where} AND embedding_id IS NULL",
        (file_id, from_ordinal),
    ).fetchone()
    if missing:
        # A bug, never a user's error: refuse to store chunks that search could not find.
        raise StoreError(f"internal error: {missing} chunks without a cached vector")
    # The rows are made here, not by INSERT ... SELECT: reading the text back from the
    # table took three times as long as indexing it, and `space_cjk` called from SQL takes
    # the GIL for every row, a wait behind the event loop each time.
    if texts is None:
        rows = conn.execute(
            f"SELECT id, text FROM chunks WHERE {where} ORDER BY ordinal", (file_id, from_ordinal)
        ).fetchall()
    else:
        ids = conn.execute(
            f"SELECT id FROM chunks WHERE {where} ORDER BY ordinal", (file_id, from_ordinal)
        ).fetchall()
        rows = [(i, t) for (i,), t in zip(ids, texts, strict=True)]
    conn.executemany(
        "INSERT INTO chunks_fts (rowid, text) VALUES (?, ?)",
        [(i, space_cjk(t)) for i, t in rows],
    )


def drop_chunks(conn: sqlite3.Connection, file_id: int) -> None:
    """Delete a file's chunks, their vectors and their full-text rows."""
    conn.execute(
        "INSERT INTO chunks_fts (chunks_fts, rowid, text)"
        " SELECT 'delete', id, space_cjk(text) FROM chunks WHERE file_id = ?",
        (file_id,),
    )
    conn.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))


def drop_file(conn: sqlite3.Connection, file_id: int) -> None:
    """Delete a file's row with its chunks."""
    drop_chunks(conn, file_id)
    conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
