"""Writing files: groups of `Write`s, each group one transaction, so that each file is all
old or all new; a reset deferred until the run's first vectors; the manifest a run claimed,
recorded with the first file that stores vectors."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable

from ragidx.models import FileStatus
from ragidx.store import cache, staging
from ragidx.store.base import Embeddings, FileWrite, Staged, Write
from ragidx.store.manifest import write_manifest
from ragidx.store.rows import drop_chunks, drop_file, file_values, index_text, insert_chunks

__all__ = ["Writer"]

# What `reset` empties; files before the stamps, which its triggers would otherwise refill.
_ALL_TABLES = ("chunks", "embeddings", "files", "dir_stamps", "unstamped", "runs", "manifest")

_Transaction = Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]


class Writer:
    """The write path of one connection, and the state it keeps between groups: the
    manifest claimed, a deferred reset's writes, whether any file's vectors are held."""

    def __init__(self, transaction: _Transaction) -> None:
        self._transaction = transaction
        self.claimed: dict[str, str] | None = None
        """The manifest to record with the first file that stores vectors."""
        self.deferred: list[Write] | None = None
        """A deferred reset's writes, until it commits; None when no reset waits."""
        self._holds: bool | None = None  # whether any file's vectors may be held

    def reset(self, *, defer: bool = False) -> None:
        """Empty the index now; or, with `defer`, in the transaction of the first `commit`
        that carries vectors, holding back the writes without until then."""
        if defer:
            self.deferred = []
            return
        with self._transaction() as conn:
            _empty(conn)

    def commit(self, writes: list[Write], run_id: int) -> None:
        """Apply a group of changes in one transaction, in order: each file is all old or all
        new, and the vectors a file uses are cached before it. A deferred reset holds the
        writes back until a group carries vectors, then empties the index in its transaction."""
        held = self.deferred
        if held is not None:
            if not any(map(_carries_vectors, writes)):
                held.extend(writes)  # small: failed and skipped files, without chunks
                return
            writes = [*held, *writes]
        self._commit(writes, run_id, reset=held is not None)

    def complete_reset(self, run_id: int) -> None:
        """Carry out a deferred reset in a run that had nothing to embed and completed
        without a failure: nothing was at stake."""
        if self.deferred is not None:
            self._commit(self.deferred, run_id, reset=True)

    def drop_staged(self) -> int:
        """`staging.drop_staged` in a transaction of its own."""
        with self._transaction() as conn:
            moved = staging.drop_staged(conn)
        self._holds = None  # looked up again when needed
        return moved

    def _commit(self, writes: list[Write], run_id: int, *, reset: bool) -> None:
        now = time.time()
        files = [w for w in writes if isinstance(w, FileWrite)]
        stores_vectors = any(w.status is FileStatus.INDEXED and w.chunk_count for w in files)
        with self._transaction() as conn:
            if reset:
                _empty(conn, keep_run=run_id)
            for write in writes:
                if isinstance(write, Embeddings):
                    cache.put(conn, write)
                elif isinstance(write, Staged):
                    staging.stage(conn, write)
                else:
                    self._apply(conn, write, run_id, now)
            if self.claimed and stores_vectors:
                write_manifest(conn, self.claimed)
            _count(conn, files, run_id, now)
        self.deferred = None
        if stores_vectors:
            self.claimed = None

    def _apply(self, conn: sqlite3.Connection, w: FileWrite, run_id: int, now: float) -> None:
        if w.status is not FileStatus.FAILED and not w.touch_only and self._held(conn):
            staging.let_go(conn, w.path)
        if w.stage is not None:
            staged = staging.staging_id(conn, w.stage, w.path)
            if w.status is FileStatus.INDEXED and staged is not None:
                staging.unstage(conn, w, staged, run_id, now)
                return
            # A failed file's parts stay staged, their vectors kept: the next run's start
            # holds them for the file (`drop_staged`), whose retry finds them in the cache.
            if staged is not None and w.status is not FileStatus.FAILED:
                drop_file(conn, staged)
        if w.status is FileStatus.REMOVED:
            row = conn.execute("SELECT id FROM files WHERE path = ?", (w.path,)).fetchone()
            if row is not None:
                drop_chunks(conn, row[0])
                conn.execute("DELETE FROM files WHERE id = ?", row)
            return
        if w.status is FileStatus.FAILED:
            # Keep the old version and its size and mtime: a failed file is retried next run.
            conn.execute(
                "INSERT INTO files (path, dir, status, reason, encoding, format, run_id,"
                " updated_at) VALUES (?, ?, 'failed', ?, ?, ?, ?, ?)"
                " ON CONFLICT (path) DO UPDATE SET status = 'failed', reason = excluded.reason,"
                " run_id = excluded.run_id,"
                " updated_at = excluded.updated_at",
                (w.path, os.path.dirname(w.path), w.reason, w.encoding, w.format, run_id, now),
            )
            if w.held:
                staging.hold(conn, w.path, w.held)
                self._holds = True
            return
        if w.touch_only:
            conn.execute(
                "UPDATE files SET size = ?, mtime_ns = ?, updated_at = ? WHERE path = ?",
                (w.size, w.mtime_ns, now, w.path),
            )
            return
        (file_id,) = conn.execute(
            "INSERT INTO files (path, dir, size, mtime_ns, content_hash, status, reason, encoding,"
            " format, chunking, chunks, tokens, run_id, updated_at, unit, pages)"
            f" VALUES ({', '.join('?' * 16)}) ON CONFLICT (path) DO UPDATE SET"
            " size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " content_hash = excluded.content_hash, status = excluded.status,"
            " reason = excluded.reason, encoding = excluded.encoding, format = excluded.format,"
            " chunking = excluded.chunking, chunks = excluded.chunks, tokens = excluded.tokens,"
            " run_id = excluded.run_id, updated_at = excluded.updated_at,"
            " unit = excluded.unit, pages = excluded.pages RETURNING id",
            file_values(w, run_id, now),
        ).fetchone()
        drop_chunks(conn, file_id)
        if w.chunks:
            insert_chunks(conn, file_id, w.chunks, w.keys)
            index_text(conn, file_id, texts=[c.text for c in w.chunks])

    def _held(self, conn: sqlite3.Connection) -> bool:
        """Whether any file's vectors may be held: looked up once, then kept up to date."""
        if self._holds is None:
            self._holds = staging.any_staged(conn)
        return self._holds


def _empty(conn: sqlite3.Connection, keep_run: int | None = None) -> None:
    """Delete every row of the index, but the run `keep_run` (the one that resets it)."""
    for table in _ALL_TABLES:
        if table == "runs" and keep_run is not None:
            conn.execute("DELETE FROM runs WHERE id != ?", (keep_run,))
        else:
            conn.execute(f"DELETE FROM {table}")
    conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('delete-all')")


def _carries_vectors(write: Write) -> bool:
    if isinstance(write, Embeddings):
        return bool(write.keys)
    return bool(write.chunks)


def _count(conn: sqlite3.Connection, files: list[FileWrite], run_id: int, now: float) -> None:
    """Add the group's files to its run's counters (`ragidx_progress`)."""
    failed = sum(w.status is FileStatus.FAILED for w in files)
    done = sum(not w.touch_only and w.status is not FileStatus.FAILED for w in files)
    if done or failed:
        conn.execute(
            "UPDATE runs SET files_done = files_done + ?, files_failed = files_failed + ?,"
            " heartbeat_at = ? WHERE id = ?",
            (done, failed, now, run_id),
        )
