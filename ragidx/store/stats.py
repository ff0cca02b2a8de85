"""What `ragidx stats` shows of an index, read in one place: `StoreStats`. Its counts agree
with what search reads (no staging row is counted) and with what `gc` drops."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ragidx.models import FileStatus, WorkerProgress
from ragidx.store import cache, staging
from ragidx.store.base import RunRecord, StoreStats
from ragidx.store.lock import writer_alive

__all__ = [
    "RECENT_SECONDS",
    "failed_not_stored",
    "manifest_int",
    "progress",
    "read_stats",
    "run_record",
    "workers",
]

_STORED = (FileStatus.INDEXED, FileStatus.SKIPPED, FileStatus.FAILED)
RECENT_SECONDS = 3600.0
"""How long an ended run stays among `StoreStats.workers`."""


def read_stats(conn: sqlite3.Connection, path: Path, manifest: dict[str, str]) -> StoreStats:
    """The index's counts, its `manifest` as given, and its last run."""
    by_status = dict.fromkeys((s.value for s in _STORED), 0)
    by_status |= dict(
        conn.execute(
            f"SELECT status, count(*) FROM files WHERE {staging.visible('files')} GROUP BY status"
        )
    )
    chunks, tokens = conn.execute(
        "SELECT count(*), coalesce(sum(c.tokens), 0) FROM chunks c"
        f" JOIN files f ON f.id = c.file_id AND {staging.visible('f')}"
    ).fetchone()
    (vectors,) = conn.execute("SELECT count(*) FROM vectors").fetchone()
    (cached,) = conn.execute("SELECT count(*) FROM embeddings").fetchone()
    types: Counter[str] = Counter()
    for (file,) in conn.execute("SELECT path FROM files WHERE status = 'indexed'"):
        types[Path(file).suffix.lower() or "(none)"] += 1
    last = conn.execute(
        "SELECT id, started_at, finished_at, seconds, status, roots, summary FROM runs"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    size = sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if os.path.exists(p))
    return StoreStats(
        db=str(path),
        db_bytes=size,
        files=by_status,
        chunks=chunks,
        tokens=tokens,
        vectors=vectors,
        cached_vectors=cached,
        unused_vectors=cache.count_unused(conn),
        held_vectors=staging.held_vectors(conn),
        failed_not_stored=failed_not_stored(last, functools.partial(_failed_stored, conn)),
        provider=manifest.get("provider"),
        model=manifest.get("model"),
        dims=manifest_int(manifest, "dims"),
        chunk_tokens=manifest_int(manifest, "chunk_tokens"),
        chunk_overlap=manifest_int(manifest, "chunk_overlap"),
        file_types=dict(types.most_common()),
        last_run=run_record(last) if last else None,
        workers=workers(conn, alive=lambda: writer_alive(path)),
    )


def _failed_stored(conn: sqlite3.Connection, run_id: int) -> int:
    (stored,) = conn.execute(
        "SELECT count(*) FROM files WHERE status = 'failed' AND run_id = ?", (run_id,)
    ).fetchone()
    return int(stored)


def workers(conn: sqlite3.Connection, alive: Callable[[], bool]) -> tuple[WorkerProgress, ...]:
    """The runs in progress and those ended within `RECENT_SECONDS`, newest first; a run
    still marked running is "died" unless `alive()` (one writer at a time: the lock says)."""
    rows = conn.execute(
        "SELECT id, worker, shard, status, started_at, heartbeat_at, files_done,"
        " files_failed, in_flight FROM runs"
        " WHERE status = 'running' OR finished_at > ? ORDER BY id DESC LIMIT 100",
        (time.time() - RECENT_SECONDS,),
    ).fetchall()
    living = any(row[3] == "running" for row in rows) and alive()
    return tuple(
        progress(row, "died" if row[3] == "running" and not living else row[3]) for row in rows
    )


def progress(row: Sequence[Any], status: str) -> WorkerProgress:
    """A run's progress from `ragidx_progress`'s columns (run_id, worker, shard, status,
    started_at, heartbeat_at, files_done, files_failed, in_flight), its status as told apart
    by the store (a run marked running whose owner is gone: "died"); files in flight only
    for a run that still runs."""
    run_id, worker, shard, _, started, heartbeat, done, failed, in_flight = row
    return WorkerProgress(
        run_id=int(run_id),
        worker=str(worker or ""),
        shard=shard,
        status=status,
        started_at=float(started),
        heartbeat_at=None if heartbeat is None else float(heartbeat),
        files_done=int(done),
        files_failed=int(failed),
        in_flight=int(in_flight) if status == "running" else 0,
    )


def manifest_int(manifest: dict[str, str], key: str) -> int | None:
    return int(manifest[key]) if key in manifest else None


def failed_not_stored(last: Sequence[Any] | None, stored: Callable[[int], int]) -> int:
    """Failures of the last run (a `runs` row, as `run_record` reads it) that the index holds
    no row for: a directory that could not be read, a name the database cannot store (in
    SQLite, one that is not UTF-8). `stored(run_id)`: the failed files the run stored."""
    if last is None or not last[6]:
        return 0
    reported = int(_json(last[6]).get("failed", 0))
    return max(reported - stored(int(last[0])), 0)


def run_record(row: Sequence[Any]) -> RunRecord:
    """A `runs` row (id, started_at, finished_at, seconds, status, roots, summary) from
    either store: SQLite's JSON columns are text, Postgres's jsonb comes decoded."""
    run_id, started, finished, seconds, status, roots, summary = row
    return RunRecord(
        id=int(run_id),
        started_at=float(started),
        finished_at=None if finished is None else float(finished),
        seconds=None if seconds is None else float(seconds),
        status=str(status),
        roots=list(_json(roots)),
        summary=dict(_json(summary)) if summary else None,
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
