"""A file's rows in the Postgres index: its `files` row, its chunks with their full-text
vectors, written and dropped together. Every function runs inside the caller's transaction
and raises psycopg's errors (the store maps them).

Full text is made in each chunk's own INSERT (`to_tsvector('simple', ...)` of the text as
`fulltext.fold` folds it), so a chunk and its search terms come and go together: no
second table to keep in step, as SQLite's contentless FTS5 table is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ragidx.errors import StoreError
from ragidx.models import Chunk
from ragidx.store.base import FileWrite
from ragidx.store.postgres.fulltext import fold
from ragidx.store.rows import chunk_values, file_values

__all__ = [
    "FILE_COLUMNS",
    "Conn",
    "drop_chunks",
    "drop_file",
    "file_row",
    "insert_chunks",
]

Conn = psycopg.Connection[tuple[Any, ...]]

FILE_COLUMNS = (
    "path, dir, size, mtime_ns, content_hash, status, reason, encoding, format, chunking,"
    " chunks, tokens, run_id, updated_at, unit, pages"
)
"""`files`' columns in the order of `file_row`."""


def file_row(w: FileWrite, run_id: int, now: float) -> tuple[Any, ...]:
    """A file's row, in `FILE_COLUMNS` order (SQLite's `file_values`: the same facts)."""
    return file_values(w, run_id, now)


_CHUNK_INSERT = (
    "INSERT INTO chunks (file_id, ordinal, text, input, char_start, char_end, line_start,"
    " line_end, heading_path, tokens, page_start, page_end, visible, tsv, embedding_id)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, to_tsvector('simple', %s),"
    " %s)"
)


def insert_chunks(
    conn: Conn,
    file_id: int,
    chunks: Sequence[Chunk],
    keys: Sequence[bytes],
    *,
    visible: bool,
    again: bool = False,
    only_cached: bool = False,
) -> None:
    """The chunks' rows, each tied to its cached vector by key; `visible` for a file's own,
    not for a staging row's. `again`: a part sent a second time (a group retried after its
    commit was lost on the way back) keeps the rows it already has. A chunk whose key has no
    vector is a bug (search could not find it), refused; with `only_cached` (what a failed
    file holds), it is left out."""
    found = _embedding_ids(conn, keys)
    if only_cached:
        kept = [(c, k) for c, k in zip(chunks, keys, strict=True) if k in found]
        chunks, keys = [c for c, _ in kept], [k for _, k in kept]
    elif missing := sum(1 for key in keys if key not in found):
        raise StoreError(f"internal error: {missing} chunks without a cached vector")
    if not chunks:
        return
    statement = _CHUNK_INSERT + (" ON CONFLICT (file_id, ordinal) DO NOTHING" if again else "")
    with conn.cursor() as cur:
        cur.executemany(
            statement,
            [
                (
                    file_id,
                    c.ordinal,
                    *chunk_values(c, _jsonb),
                    visible,
                    fold(c.text),
                    found[key],
                )
                for c, key in zip(chunks, keys, strict=True)
            ],
        )


def _jsonb(path: tuple[str, ...]) -> Jsonb:
    return Jsonb(list(path))


def _embedding_ids(conn: Conn, keys: Sequence[bytes]) -> dict[bytes, int]:
    """The ids of the cached vectors of `keys` that have one: one query a file, where a
    lookup in each chunk's INSERT cost one a chunk."""
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT key, id FROM embeddings WHERE key = ANY(%s)", (list(set(keys)),)
    ).fetchall()
    return {bytes(key): int(i) for key, i in rows}


def drop_chunks(conn: Conn, file_id: int) -> None:
    conn.execute("DELETE FROM chunks WHERE file_id = %s", (file_id,))


def drop_file(conn: Conn, file_id: int) -> None:
    """Delete a file's row; its chunks go with it (ON DELETE CASCADE)."""
    conn.execute("DELETE FROM files WHERE id = %s", (file_id,))
