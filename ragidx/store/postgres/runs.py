"""Runs in the Postgres index, and how anyone tells a live run from a dead one.

A run that starts (`begin_run`) takes a session advisory lock keyed on its id on the
store's connection, held until it finishes, the store closes, or its process or
connection dies: the server then frees it. So a `running` row whose lock is free is a run
that died (`ragidx_progress` says `died`), its staged parts are anyone's to clear
(`DEAD`), and `reset` knows whether another worker is still writing.

Every function raises psycopg's errors; the store maps them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable

from psycopg.types.json import Jsonb

from ragidx.errors import StoreError
from ragidx.store.postgres.connect import Target
from ragidx.store.postgres.migrations import index_vectors, lock_key
from ragidx.store.postgres.rows import Conn

__all__ = [
    "begin_run",
    "count_files",
    "dead",
    "finish_run",
    "groups",
    "heartbeat",
    "hold_run_lock",
    "live_runs",
    "refuse_while_others_run",
]


def dead(schema: str, run_id: str) -> str:
    """SQL: true where the run `run_id` (an SQL expression) holds no lock, so is not alive."""
    return (
        "NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
        " AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())"
        f" AND l.classid = {lock_key(schema, 'run')}::oid AND l.objid = ({run_id})::oid)"
    )


def hold_run_lock(conn: Conn, schema: str, run_id: int) -> None:
    """Take the run's lock for this session (again, after a reconnect)."""
    conn.execute("SELECT pg_advisory_lock(%s, %s)", (lock_key(schema, "run"), run_id))


def begin_run(conn: Conn, schema: str, roots: Iterable[str], worker: str, shard: str | None) -> int:
    now = time.time()
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO runs (started_at, status, roots, worker, shard, heartbeat_at)"
            " VALUES (%s, 'running', %s, %s, %s, %s) RETURNING id",
            (now, Jsonb(list(roots)), worker, shard, now),
        ).fetchone()
    assert row is not None
    run_id = int(row[0])
    hold_run_lock(conn, schema, run_id)
    return run_id


def finish_run(
    conn: Conn,
    schema: str,
    run_id: int,
    status: str,
    summary: dict[str, object],
    on_build: Callable[[int], None] | None = None,
) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE runs SET finished_at = %s, seconds = %s, status = %s, summary = %s,"
            " in_flight = 0 WHERE id = %s",
            (
                time.time(),
                summary.get("seconds"),
                status,
                Jsonb(json.loads(json.dumps(summary))),
                run_id,
            ),
        )
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (lock_key(schema, "run"), run_id))
    if status in ("completed", "failed") and not live_runs(conn, schema):
        # Not after a run that was stopped: a build over millions of vectors takes minutes.
        # Nor while other runs still load (the parts of a sharded or Ray run): each vector
        # they store after the build would pay its way into the graph; the last one builds.
        index_vectors(conn, schema, on_build)


def heartbeat(conn: Conn, run_id: int, in_flight: int) -> None:
    conn.execute(
        "UPDATE runs SET heartbeat_at = %s, in_flight = %s WHERE id = %s",
        (time.time(), in_flight, run_id),
    )


def count_files(conn: Conn, run_id: int, done: int, failed: int) -> int:
    """Add a group's files to the run's counters, in the group's transaction; returns how
    many groups the run has committed with this one (`PgWriter` tells by it whether a
    group whose answer was lost committed)."""
    row = conn.execute(
        "UPDATE runs SET files_done = files_done + %s, files_failed = files_failed + %s,"
        " groups = groups + 1, heartbeat_at = %s WHERE id = %s RETURNING groups",
        (done, failed, time.time(), run_id),
    ).fetchone()
    return int(row[0]) if row else 0


def groups(conn: Conn, run_id: int) -> int:
    """How many groups the run has committed."""
    row = conn.execute("SELECT groups FROM runs WHERE id = %s", (run_id,)).fetchone()
    return int(row[0]) if row else 0


def live_runs(conn: Conn, schema: str, other_than: Iterable[int] = ()) -> list[tuple[int, str]]:
    """The runs still running whose owner is alive (id, worker), but `other_than`."""
    rows = conn.execute(
        f"SELECT id, worker FROM runs r WHERE status = 'running' AND NOT {dead(schema, 'r.id')}"
        " AND NOT (id = ANY(%s)) ORDER BY id",
        (list(other_than),),
    ).fetchall()
    return [(int(i), str(w)) for i, w in rows]


def refuse_while_others_run(conn: Conn, where: Target, own: Iterable[int]) -> None:
    """`StoreError` naming the other runs writing the index, where any is alive."""
    others = live_runs(conn, where.schema, other_than=own)
    if others:
        who = ", ".join(f"run {i} ({w or 'unknown worker'})" for i, w in others)
        raise StoreError(
            f"cannot reset the index {where.location}: other runs are writing it: {who}",
            hint="wait for them to finish, or stop them, then reset",
        )
