"""Staging in the Postgres index: chunks stored, with their vectors, under a row that
search, stats and export do not see (as `ragidx.store.staging` does for SQLite; read it for
the why).

A staging row is a `files` row with the file's real path, the directory '' (no walk plans
it, no directory stamp counts it), the status `staging`, a `stage` (NOT NULL; 0 = a failed
file's held chunks) and the `run_id` that staged it; its chunks have `visible = false`.
Many workers share the index, so `drop_staged` only takes the rows of runs that are gone
(whose session advisory lock is free), never a live worker's parts.

Every function runs inside the caller's transaction and raises psycopg's errors.
"""

from __future__ import annotations

import os
import time

from ragidx.models import Chunk
from ragidx.store.base import FileWrite, Staged
from ragidx.store.postgres.rows import (
    FILE_COLUMNS,
    Conn,
    drop_file,
    file_row,
    insert_chunks,
)

__all__ = [
    "HELD_STAGE",
    "STAGING",
    "any_staged",
    "drop_staged",
    "hold",
    "let_go",
    "stage",
    "staging_id",
    "unstage",
]

STAGING = "staging"
HELD_STAGE = 0  # runs number their stages from 1
_HELD_RUN = 0  # held rows outlive the run that made them


def staging_id(conn: Conn, stage: int, path: str, run_id: int) -> int | None:
    """The id of the file's staging row for `stage` of the run `run_id`, if it has one."""
    row = conn.execute(
        "SELECT id FROM files WHERE path = %s AND stage = %s AND run_id = %s",
        (path, stage, run_id),
    ).fetchone()
    return int(row[0]) if row else None


def any_staged(conn: Conn) -> bool:
    """Whether any staging row exists: parts staged, or a failed file's vectors held."""
    return (
        conn.execute("SELECT 1 FROM files WHERE stage IS NOT NULL LIMIT 1").fetchone() is not None
    )


def stage(conn: Conn, part: Staged, run_id: int) -> None:
    """Store a big file's part under the run's staging row for it, made by the first part."""
    row = conn.execute(
        "INSERT INTO files (path, dir, stage, status, run_id, updated_at)"
        " VALUES (%s, '', %s, %s, %s, %s) ON CONFLICT (path, stage, run_id)"
        " WHERE stage IS NOT NULL DO UPDATE SET updated_at = excluded.updated_at RETURNING id",
        (part.path, part.stage, STAGING, run_id, time.time()),
    ).fetchone()
    assert row is not None
    # `again`: a retried group resends parts whose first sending may have committed.
    insert_chunks(conn, row[0], part.chunks, part.keys, visible=False, again=True)


def unstage(conn: Conn, w: FileWrite, staged: int, run_id: int, now: float) -> None:
    """The staging row `staged`, with its chunks, becomes the file `w`; the old version goes."""
    old = conn.execute(
        "SELECT id FROM files WHERE path = %s AND stage IS NULL", (w.path,)
    ).fetchone()
    if old is not None:
        drop_file(conn, old[0])
    sets = ", ".join(f"{c.strip()} = %s" for c in FILE_COLUMNS.split(","))
    conn.execute(
        f"UPDATE files SET {sets}, stage = NULL WHERE id = %s",
        (*file_row(w, run_id, now), staged),
    )
    conn.execute("UPDATE chunks SET visible = true WHERE file_id = %s", (staged,))


def hold(conn: Conn, path: str, pieces: list[tuple[Chunk, bytes]]) -> None:
    """Stage a failed file's chunks that have their vectors under stage 0, which no run
    uses: `gc` keeps the vectors until the file is indexed, skipped, removed or gone."""
    let_go(conn, path)
    row = conn.execute(
        "INSERT INTO files (path, dir, stage, status, run_id, updated_at)"
        " VALUES (%s, '', %s, %s, %s, %s) RETURNING id",
        (path, HELD_STAGE, STAGING, _HELD_RUN, time.time()),
    ).fetchone()
    assert row is not None
    chunks, keys = [c for c, _ in pieces], [k for _, k in pieces]
    insert_chunks(conn, row[0], chunks, keys, visible=False, only_cached=True)


def let_go(conn: Conn, path: str) -> None:
    """Indexed, skipped or removed: what was held for the file is needed no more."""
    conn.execute("DELETE FROM files WHERE path = %s AND stage = %s", (path, HELD_STAGE))


def drop_staged(conn: Conn, dead: str) -> int:
    """Clear what runs that are gone staged (`dead`: SQL true for a run id `f.run_id` whose
    run is not alive). A big file's staged parts become held for the file (`hold`): paid
    for, they stay until it is indexed, skipped or removed. What is held for a file that is
    gone goes. Returns how many files had parts staged."""
    moved = 0
    rows = conn.execute(
        f"SELECT f.id, f.path, f.stage FROM files f WHERE f.stage IS NOT NULL"
        f" AND (f.stage = {HELD_STAGE} OR {dead}) ORDER BY f.id FOR UPDATE SKIP LOCKED"
    ).fetchall()
    for file_id, path, stage_no in rows:
        if not os.path.lexists(path):
            drop_file(conn, file_id)
        elif stage_no != HELD_STAGE:
            let_go(conn, path)
            conn.execute(
                "UPDATE files SET stage = %s, run_id = %s WHERE id = %s",
                (HELD_STAGE, _HELD_RUN, file_id),
            )
            moved += 1
    return moved
