"""Staging: chunks stored, with their vectors, under a row that search, stats and export do
not see.

A big file's parts commit as they finish (`Staged`), each under the file's staging row for
the run's stage; the file's last write puts that row, chunks and all, in the place of the
file's old version (`unstage`). A failed file's chunks whose vectors came back are held the
same way under stage 0, which no run uses (`hold`): `gc` keeps what was paid for until the
file is indexed, skipped, removed or gone (`let_go`). Parts a killed run left staged become
held at the next run's start (`drop_staged`).

A staging row is a `files` row with status `staging` and a path no real file has, made by
`_staging_path`. Every query that reads what is indexed keeps to `visible` rows; the
`vectors` view (migration 3) does the same. Every function here that writes runs inside the
caller's transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time

from ragidx.models import Chunk
from ragidx.store.base import FileWrite, Staged
from ragidx.store.rows import FILE_SET, drop_file, file_values, index_text, insert_chunks

__all__ = [
    "STAGING",
    "any_staged",
    "drop_staged",
    "held_vectors",
    "hold",
    "let_go",
    "stage",
    "staging_id",
    "unstage",
    "visible",
]

STAGING = "staging"
_HELD_STAGE = 0  # runs number their stages from 1


def visible(files: str) -> str:
    """SQL that is true for a row of `files` (by the name the query gives it) that is a
    file's own, not a staging row: all that search, stats and export read."""
    return f"{files}.status != '{STAGING}'"


def _staged(files: str) -> str:
    return f"{files}.status = '{STAGING}'"


def _staging_path(stage: int, path: str) -> str:
    # NUL never occurs in a real path, so this never meets one.
    return f"\0staging\0{stage}\0{path}"


def _staged_as(staging_path: str) -> tuple[int, str]:
    """`_staging_path` undone: the stage and the file's path."""
    _, _, stage, path = staging_path.split("\0", 3)
    return int(stage), path


def staging_id(conn: sqlite3.Connection, stage: int, path: str) -> int | None:
    """The id of the file's staging row for `stage`, if it has one."""
    row = conn.execute("SELECT id FROM files WHERE path = ?", (_staging_path(stage, path),))
    found = row.fetchone()
    return int(found[0]) if found else None


def any_staged(conn: sqlite3.Connection) -> bool:
    """Whether any staging row exists: parts staged, or a failed file's vectors held."""
    return (
        conn.execute(f"SELECT 1 FROM files WHERE {_staged('files')} LIMIT 1").fetchone() is not None
    )


def stage(conn: sqlite3.Connection, part: Staged) -> None:
    """Store a big file's part under its staging row, made by the first part."""
    (file_id,) = conn.execute(
        "INSERT INTO files (path, dir, status, updated_at) VALUES (?, '', ?, ?)"
        " ON CONFLICT (path) DO UPDATE SET updated_at = excluded.updated_at RETURNING id",
        (_staging_path(part.stage, part.path), STAGING, time.time()),
    ).fetchone()
    if not part.chunks:
        return
    insert_chunks(conn, file_id, part.chunks, part.keys)
    index_text(conn, file_id, part.chunks[0].ordinal, [c.text for c in part.chunks])


def unstage(conn: sqlite3.Connection, w: FileWrite, staged: int, run_id: int, now: float) -> None:
    """The staging row `staged`, with its chunks, becomes the file `w`; the old version goes."""
    old = conn.execute("SELECT id FROM files WHERE path = ?", (w.path,)).fetchone()
    if old is not None:
        drop_file(conn, old[0])
    conn.execute(
        f"UPDATE files SET {FILE_SET} WHERE id = ?", (*file_values(w, run_id, now), staged)
    )


def hold(conn: sqlite3.Connection, path: str, pieces: list[tuple[Chunk, bytes]]) -> None:
    """Stage a failed file's chunks that have their vectors under stage 0, which no run
    uses: `gc` keeps the vectors until the file is indexed, skipped, removed or gone."""
    old = staging_id(conn, _HELD_STAGE, path)
    if old is not None:
        drop_file(conn, old)
    (file_id,) = conn.execute(
        "INSERT INTO files (path, dir, status, updated_at) VALUES (?, '', ?, ?) RETURNING id",
        (_staging_path(_HELD_STAGE, path), STAGING, time.time()),
    ).fetchone()
    insert_chunks(conn, file_id, [c for c, _ in pieces], [k for _, k in pieces])
    conn.execute("DELETE FROM chunks WHERE file_id = ? AND embedding_id IS NULL", (file_id,))
    index_text(conn, file_id)


def let_go(conn: sqlite3.Connection, path: str) -> None:
    """Indexed, skipped or removed: what was held for the file is needed no more."""
    if (held := staging_id(conn, _HELD_STAGE, path)) is not None:
        drop_file(conn, held)


def drop_staged(conn: sqlite3.Connection) -> int:
    """Clear what runs that never finished staged. A big file's staged parts become held
    for the file (`hold`): paid for, they stay until it is indexed, skipped or removed.
    What is held for a file that is gone goes. Returns how many files had parts staged."""
    moved = 0
    rows = conn.execute(f"SELECT id, path FROM files WHERE {_staged('files')}").fetchall()
    for file_id, path in rows:
        stage, real = _staged_as(path)
        if not os.path.lexists(real):
            drop_file(conn, file_id)
        elif stage != _HELD_STAGE:
            let_go(conn, real)
            held = _staging_path(_HELD_STAGE, real)
            conn.execute("UPDATE files SET path = ? WHERE id = ?", (held, file_id))
            moved += 1
    return moved


def held_vectors(conn: sqlite3.Connection) -> int:
    """Cached vectors that only staging rows use: paid for, kept for files not yet
    indexed (a big file a run never finished, a failed file's chunks)."""
    (held,) = conn.execute(
        "SELECT count(DISTINCT c.embedding_id) FROM chunks c JOIN files f"
        f" ON f.id = c.file_id AND {_staged('f')} WHERE NOT EXISTS (SELECT 1 FROM chunks o"
        f" JOIN files g ON g.id = o.file_id AND {visible('g')}"
        " WHERE o.embedding_id = c.embedding_id)"
    ).fetchone()
    return int(held)
