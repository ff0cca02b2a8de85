"""Writing files to the Postgres index: groups of `Write`s, each group one transaction, so
each file is all old or all new (as `ragidx.store.files.Writer` for SQLite, whose state and
rules this mirrors: a reset deferred until the run's first vectors, the manifest a run
claimed recorded with the first file that stores vectors, held chunks let go).

What many workers add: every group takes the gc lock shared, so `gc` never drops a vector a
group just cached; a group that records the manifest takes the manifest lock and checks the
recorded space again (two workers claiming different spaces: the second gets
`ManifestMismatch`), and types the vector column (`type_vectors`); a group adds its files to
its run's counters.

In: a `transaction` (a context manager giving a connection inside `BEGIN` ... `COMMIT`).
Raises psycopg's errors and `StoreError`; the store maps and retries.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping

from psycopg import sql

from ragidx.errors import ManifestMismatch
from ragidx.models import FileStatus
from ragidx.store.base import Embeddings, FileWrite, Staged, Write
from ragidx.store.postgres import runs, staging
from ragidx.store.postgres.migrations import GC, MANIFEST, lock_key, type_vectors
from ragidx.store.postgres.rows import (
    FILE_COLUMNS,
    Conn,
    drop_chunks,
    drop_file,
    file_row,
    insert_chunks,
)

__all__ = ["PgWriter", "check_space", "read_manifest"]

# What `reset` empties; `runs` apart, as the resetting run stays.
_ALL_TABLES = ("chunks", "embeddings", "files", "dir_stamps", "unstamped", "manifest")

_Transaction = Callable[[], contextlib.AbstractContextManager[Conn]]


def read_manifest(conn: Conn) -> dict[str, str]:
    return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM manifest")}


def check_space(location: str, have: Mapping[str, str], wanted: Mapping[str, str | None]) -> None:
    """Raise `ManifestMismatch` where a value of `wanted` differs from the one recorded in
    `have` (a value of None, or a key not recorded, matches anything)."""
    for key, value in wanted.items():
        if value is not None and key in have and have[key] != value:
            raise ManifestMismatch(
                f"the index {location} was built with {key} {have[key]!r}, not {value!r}",
                hint="use the same embedder settings, or pass --reset to start over",
            )


class PgWriter:
    """The write path of one store, and the state it keeps between groups."""

    def __init__(self, transaction: _Transaction, schema: str, location: str) -> None:
        self._transaction = transaction
        self._key = lock_key(schema, "index")
        self._location = location
        self.claimed: dict[str, str] | None = None
        """The manifest to record with the first file that stores vectors."""
        self.space: dict[str, str] = {}
        """Of `claimed`, what must match the recorded manifest (the space, its binding);
        the rest are settings, recorded over another run's."""
        self.deferred: list[Write] | None = None
        self._holds: bool | None = None
        self._groups: dict[int, int] = {}  # groups committed, by run (only this store's)
        self._sending: tuple[list[Write], int] | None = None
        """The group being sent and the run's groups count once it commits."""

    def reset(self, *, defer: bool = False) -> None:
        if defer:
            self.deferred = []
            return
        with self._transaction() as conn:
            self._lock(conn, GC, shared=False)
            _empty(conn)

    def commit(self, writes: list[Write], run_id: int) -> None:
        """As `Writer.commit`: a deferred reset holds back writes without vectors, then
        empties the index in the transaction of the first group that carries some. Called
        again with the same `writes` after a lost connection (`connect.retried`), it first
        asks whether the first sending committed, its answer lost on the way back: a group
        sent twice would move a big file's last part into place over the whole file."""
        held = self.deferred
        if held is not None and not any(map(_carries_vectors, writes)):
            held.extend(writes)
            return
        self._send(writes, writes if held is None else [*held, *writes], run_id, held is not None)

    def complete_reset(self, run_id: int) -> None:
        if self.deferred is not None:
            self._send(self.deferred, self.deferred, run_id, True)

    def drop_staged(self, dead: str) -> int:
        with self._transaction() as conn:
            moved = staging.drop_staged(conn, dead)
        self._holds = None
        return moved

    def _lock(self, conn: Conn, which: int, *, shared: bool) -> None:
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(f"SELECT {function}(%s, %s)", (self._key, which))

    def _send(self, key: list[Write], writes: list[Write], run_id: int, reset: bool) -> None:
        files = [w for w in writes if isinstance(w, FileWrite)]
        stores_vectors = any(w.status is FileStatus.INDEXED and w.chunk_count for w in files)
        sent = self._sending
        if sent is None or sent[0] is not key or self._groups_of(run_id, fresh=True) != sent[1]:
            self._sending = (key, self._groups_of(run_id) + 1)
            self._groups[run_id] = self._commit(writes, files, run_id, reset, stores_vectors)
        self._sending = None
        self.deferred = None
        if stores_vectors:
            self.claimed = None

    def _groups_of(self, run_id: int, *, fresh: bool = False) -> int:
        if fresh or run_id not in self._groups:
            with self._transaction() as conn:
                self._groups[run_id] = runs.groups(conn, run_id)
        return self._groups[run_id]

    def _commit(
        self, writes: list[Write], files: list[FileWrite], run_id: int, reset: bool, vectors: bool
    ) -> int:
        """One group in one transaction; returns the run's groups committed, with it."""
        now = time.time()
        records = self.claimed if vectors else None
        with self._transaction() as conn:
            # A reset takes gc's lock whole: no other group may be half-way through.
            self._lock(conn, GC, shared=not reset)
            if records:
                self._lock(conn, MANIFEST, shared=False)
                if not reset:
                    check_space(self._location, read_manifest(conn), self.space)
            if reset:
                _empty(conn, keep_run=run_id)
            if records and records.get("dims"):
                type_vectors(conn, int(records["dims"]))
            for write in writes:
                if isinstance(write, Embeddings):
                    _put(conn, write)
                elif isinstance(write, Staged):
                    staging.stage(conn, write, run_id)
                else:
                    self._apply(conn, write, run_id, now)
            if records:
                conn.cursor().executemany(
                    "INSERT INTO manifest (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    list(records.items()),
                )
            return runs.count_files(
                conn,
                run_id,
                sum(not w.touch_only and w.status is not FileStatus.FAILED for w in files),
                sum(w.status is FileStatus.FAILED for w in files),
            )

    def _apply(self, conn: Conn, w: FileWrite, run_id: int, now: float) -> None:
        if w.status is not FileStatus.FAILED and not w.touch_only and self._held(conn):
            staging.let_go(conn, w.path)
        if w.stage is not None:
            staged = staging.staging_id(conn, w.stage, w.path, run_id)
            if w.status is FileStatus.INDEXED and staged is not None:
                staging.unstage(conn, w, staged, run_id, now)
                return
            if w.status is FileStatus.INDEXED and _in_place(conn, w, run_id):
                return  # a group sent again whose first sending committed: done already
            if staged is not None and w.status is not FileStatus.FAILED:
                drop_file(conn, staged)
        if w.status is FileStatus.REMOVED:
            conn.execute("DELETE FROM files WHERE path = %s AND stage IS NULL", (w.path,))
            return
        if w.status is FileStatus.FAILED:
            # Keep the old version and its size and mtime: a failed file is retried next run.
            conn.execute(
                "INSERT INTO files (path, dir, status, reason, encoding, format, run_id,"
                " updated_at) VALUES (%s, %s, 'failed', %s, %s, %s, %s, %s)"
                " ON CONFLICT (path) WHERE stage IS NULL DO UPDATE SET status = 'failed',"
                " reason = excluded.reason, run_id = excluded.run_id,"
                " updated_at = excluded.updated_at",
                (w.path, os.path.dirname(w.path), w.reason, w.encoding, w.format, run_id, now),
            )
            if w.held:
                staging.hold(conn, w.path, w.held)
                self._holds = True
            return
        if w.touch_only:
            conn.execute(
                "UPDATE files SET size = %s, mtime_ns = %s, updated_at = %s"
                " WHERE path = %s AND stage IS NULL",
                (w.size, w.mtime_ns, now, w.path),
            )
            return
        columns = [c.strip() for c in FILE_COLUMNS.split(",")]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "path")
        row = conn.execute(
            f"INSERT INTO files ({FILE_COLUMNS}) VALUES ({', '.join(['%s'] * len(columns))})"
            f" ON CONFLICT (path) WHERE stage IS NULL DO UPDATE SET {updates} RETURNING id",
            file_row(w, run_id, now),
        ).fetchone()
        assert row is not None
        drop_chunks(conn, row[0])
        if w.chunks:
            insert_chunks(conn, row[0], w.chunks, w.keys, visible=True)

    def _held(self, conn: Conn) -> bool:
        if self._holds is None:
            self._holds = staging.any_staged(conn)
        return self._holds


def _in_place(conn: Conn, w: FileWrite, run_id: int) -> bool:
    """Whether the run already moved the big file `w`'s staged parts into place."""
    row = conn.execute(
        "SELECT 1 FROM files WHERE path = %s AND stage IS NULL AND run_id = %s"
        " AND status = 'indexed' AND content_hash IS NOT DISTINCT FROM %s AND chunks = %s",
        (w.path, run_id, w.content_hash, w.chunk_count),
    ).fetchone()
    return row is not None


def _put(conn: Conn, e: Embeddings) -> None:
    """Cache vectors by key; a key already cached (by this worker or another) keeps its own.
    In key order, so two groups caching the same keys wait for each other rather than
    deadlock (an insert that meets another's uncommitted key waits for its transaction).
    Pipelined rows: `unnest` over a `vector[]` parameter took 5x as long (measured)."""
    rows = sorted(zip(e.keys, e.vectors, strict=True), key=lambda row: row[0])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO embeddings (key, vector) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
            rows,
        )


def _empty(conn: Conn, keep_run: int | None = None) -> None:
    """Delete every row of the index but the run `keep_run` (the one that resets it)."""
    # The HNSW index goes too: the reload is built into it whole after the run.
    conn.execute("DROP INDEX IF EXISTS embeddings_hnsw")
    conn.execute(
        sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
            sql.SQL(", ").join(map(sql.Identifier, _ALL_TABLES))
        )
    )
    if keep_run is None:
        conn.execute("DELETE FROM runs")
    else:
        conn.execute("DELETE FROM runs WHERE id <> %s", (keep_run,))


def _carries_vectors(write: Write) -> bool:
    if isinstance(write, Embeddings):
        return bool(write.keys)
    return bool(write.chunks)
