"""What `ragidx stats` shows of a Postgres index, read in one place: `StoreStats`. Its counts
agree with what search reads (no staging row's chunks are counted) and with what `gc` drops,
as SQLite's do (`ragidx.store.stats`); and it lists the workers' runs (`workers`).

In: an autocommit connection from `connect`, the index's location (the URL without its
password) and manifest. Errors: psycopg's own, which `PostgresStore` turns into
`StoreError`. Every count is read in one transaction: one snapshot, however many workers
commit meanwhile.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import Counter
from pathlib import PurePosixPath
from typing import Any

import psycopg

from ragidx.models import FileStatus, WorkerProgress
from ragidx.store.base import StoreStats
from ragidx.store.postgres import maintain
from ragidx.store.stats import (
    RECENT_SECONDS,
    failed_not_stored,
    manifest_int,
    progress,
    run_record,
)

__all__ = ["read_stats", "read_workers"]

Conn = psycopg.Connection[tuple[Any, ...]]

_STORED = (FileStatus.INDEXED, FileStatus.SKIPPED, FileStatus.FAILED)
_PATHS = 10_000  # paths a server-side cursor hands over at a time


def read_stats(conn: Conn, location: str, manifest: dict[str, str]) -> StoreStats:
    """The index's counts, its `manifest` as given, its last run and its workers."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        by_status = dict.fromkeys((s.value for s in _STORED), 0)
        by_status |= {
            str(status): int(n)
            for status, n in conn.execute(
                "SELECT status, count(*) FROM files WHERE stage IS NULL GROUP BY status"
            )
        }
        chunks, tokens, vectors = _one(
            conn,
            "SELECT count(*), coalesce(sum(tokens), 0), count(embedding_id) FROM chunks"
            " WHERE visible",
        )
        (cached,) = _one(conn, "SELECT count(*) FROM embeddings")
        last = conn.execute(
            "SELECT id, started_at, finished_at, seconds, status, roots, summary FROM runs"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
        size, _ = maintain.file_bytes(conn)
        return StoreStats(
            db=location,
            db_bytes=size,
            files=by_status,
            chunks=int(chunks),
            tokens=int(tokens),
            vectors=int(vectors),
            cached_vectors=int(cached),
            unused_vectors=maintain.count_unused(conn),
            held_vectors=maintain.held_vectors(conn),
            failed_not_stored=failed_not_stored(last, functools.partial(_failed_stored, conn)),
            provider=manifest.get("provider"),
            model=manifest.get("model"),
            dims=manifest_int(manifest, "dims"),
            chunk_tokens=manifest_int(manifest, "chunk_tokens"),
            chunk_overlap=manifest_int(manifest, "chunk_overlap"),
            file_types=_file_types(conn),
            last_run=run_record(last) if last else None,
            workers=read_workers(conn),
        )


def read_workers(conn: Conn, now: float | None = None) -> tuple[WorkerProgress, ...]:
    """The runs still running ("running", or "died" where the run's session is gone: its
    advisory lock is free) and those that ended in the last `RECENT_SECONDS`,
    newest first, as `ragidx_progress` shows them; files in flight only for a live run."""
    since = (time.time() if now is None else now) - RECENT_SECONDS
    rows = conn.execute(
        "SELECT p.run_id, p.worker, p.shard, p.status, r.started_at, r.heartbeat_at,"
        " p.files_done, p.files_failed, p.in_flight"
        " FROM ragidx_progress p JOIN runs r ON r.id = p.run_id"
        " WHERE r.status = 'running' OR r.finished_at > %s ORDER BY p.run_id DESC LIMIT 100",
        (since,),
    ).fetchall()
    return tuple(progress(row, str(row[3])) for row in rows)


def _one(conn: Conn, query: str, *params: Any) -> tuple[Any, ...]:
    row = conn.execute(query, params or None).fetchone()
    assert row is not None  # an aggregate without GROUP BY: always one row
    return row


def _file_types(conn: Conn) -> dict[str, int]:
    """Indexed files by suffix (as `Path.suffix` says, lower-cased), most common first."""
    types: Counter[str] = Counter()
    with conn.cursor(f"ragidx_types_{uuid.uuid4().hex}") as cur:
        cur.itersize = _PATHS
        cur.execute("SELECT path FROM files WHERE status = 'indexed' AND stage IS NULL")
        for (path,) in cur:
            types[PurePosixPath(path).suffix.lower() or "(none)"] += 1
    return dict(types.most_common())


def _failed_stored(conn: Conn, run_id: int) -> int:
    query = "SELECT count(*) FROM files WHERE status = 'failed' AND run_id = %s"
    return int(_one(conn, query, run_id)[0])
