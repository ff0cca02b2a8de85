"""The SQLite index: one file, WAL mode, one writer, any number of readers.

`SqliteStore` implements `Store` by composing one module per concern, each a set of
functions over the connection: `connect` (opening), `manifest`, `files` (the write path),
`staging`, `cache` (the embedding cache), `stamps`, `tree` (what a run plans from),
`queries` (search and export), `vector_file` (the vectors beside the index that search
scans) and `stats`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sqlite3
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ragidx.store import cache, queries, staging, stamps, tree
from ragidx.store.base import ChunkRow, FileRecord, Store, StoreStats, Write
from ragidx.store.connect import connect, connect_for_reading
from ragidx.store.damage import store_error, write_error
from ragidx.store.files import Writer
from ragidx.store.manifest import check_space, read_manifest
from ragidx.store.stamps import DirStamp, Stamp
from ragidx.store.stats import read_stats
from ragidx.store.vector_file import VectorFile

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SqliteStore"]

_T = TypeVar("_T")


def _guard(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from exc
        if isinstance(result, types.GeneratorType | sqlite3.Cursor):
            return _guard_rows(self.path, result)  # rows are read, and can fail, later
        return result

    return guarded


def _guard_rows(path: Path, rows: Iterator[_T]) -> Iterator[_T]:
    try:
        yield from rows
    except sqlite3.Error as exc:
        raise store_error(path, exc) from exc


def _maps_sqlite_errors(cls: type[_T]) -> type[_T]:
    """Every public method raises `StoreError` (`IndexDamaged` where the file is corrupt),
    never sqlite3's own errors, from its queries or from the rows it hands out lazily: one
    mapping for every read path, present and future. Writes map theirs in `transaction`."""
    for name, attr in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(attr):
            setattr(cls, name, _guard(attr))
    return cls


@_maps_sqlite_errors
class SqliteStore:
    """An open index database (see `Store` for what each method promises). Not shared
    between threads at the same time."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, for_reading: bool = False) -> None:
        self.conn = conn
        self.path = path
        self._writer = Writer(self.transaction)
        self._vectors = VectorFile(path)
        self._for_reading = for_reading  # its readers are opened as it was

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True, upgrade: bool = True) -> SqliteStore:
        """Open (and with `create`, make) the index at `path`, migrating its schema; or,
        without `upgrade`, read only, refusing a schema that needs migrating."""
        return cls(connect(path, create=create, upgrade=upgrade), path)

    @classmethod
    def open_for_reading(cls, path: Path) -> SqliteStore:
        """For commands that only read: read-only where the index or its directory cannot
        be written (`connect_for_reading`)."""
        return cls(connect_for_reading(path), path, for_reading=True)

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._vectors.close()
        self.conn.close()

    def reader(self, *, blank: bool = False) -> SqliteStore:
        if blank:
            return type(self).open(Path(":memory:"))
        return (
            type(self).open_for_reading(self.path)
            if self._for_reading
            else type(self).open(self.path)
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any error."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise write_error(self.path, exc) from exc
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise write_error(self.path, exc) from exc
            raise

    # -- the manifest and resets ---------------------------------------------------------

    def manifest(self) -> dict[str, str]:
        if self._writer.deferred is not None:
            return {}
        return read_manifest(self.conn)

    def check_manifest(
        self, provider: str, model: str, dims: int, binding: Mapping[str, str] | None = None
    ) -> None:
        wanted = {"provider": provider, "model": model, "dims": str(dims) if dims else None}
        wanted.update(binding or {})
        check_space(self.conn, self.path, self.manifest(), wanted)

    def claim_manifest(
        self,
        provider: str,
        model: str,
        dims: int,
        settings: Mapping[str, int | str],
        *,
        binding: Mapping[str, str] | None = None,
    ) -> None:
        """Nothing is written now: a run that stores nothing (every file unchanged, or every
        request failed) binds nothing, and leaves the server the index names as it was."""
        wanted = {"provider": provider, "model": model, "dims": str(dims), **(binding or {})}
        check_space(self.conn, self.path, self.manifest(), wanted)
        self._writer.claimed = {**wanted, **{k: str(v) for k, v in settings.items()}}

    @property
    def resetting(self) -> bool:
        return self._writer.deferred is not None

    def reset(self, *, defer: bool = False) -> None:
        """With `defer`, nothing changes yet: the index is emptied in the transaction of the
        first `commit` that carries vectors, the proof that the new embedder answers. Until
        then `manifest` reads as empty and writes without vectors (failed or skipped files)
        are held back, so a run that stops or fails before it has any vectors (a server that
        refuses the key, or is not there) leaves the index as it was. A run with nothing to
        embed at all resets it if it completes (`complete_reset`)."""
        self._writer.reset(defer=defer)
        if not defer:
            self._vectors.remove()  # its vectors went; a deferred reset's commit rebuilds it

    def complete_reset(self, run_id: int) -> None:
        self._writer.complete_reset(run_id)
        self._follow()

    # -- runs ----------------------------------------------------------------------------

    def begin_run(self, roots: Iterable[str], *, worker: str = "", shard: str | None = None) -> int:
        now = time.time()
        with self.transaction() as conn:
            # One writer at a time holds the lock: a run still marked running died.
            conn.execute(
                "UPDATE runs SET status = 'died', in_flight = 0,"
                " finished_at = coalesce(heartbeat_at, started_at) WHERE status = 'running'"
            )
            cur = conn.execute(
                "INSERT INTO runs (started_at, status, roots, worker, shard, heartbeat_at)"
                " VALUES (?, 'running', ?, ?, ?, ?)",
                (now, json.dumps(list(roots)), worker, shard, now),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def heartbeat(self, run_id: int, in_flight: int) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET in_flight = ?, heartbeat_at = ? WHERE id = ?",
                (in_flight, time.time(), run_id),
            )

    def finish_run(
        self,
        run_id: int,
        status: str,
        summary: dict[str, object],
        *,
        on_build: Callable[[int], None] | None = None,
    ) -> None:
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, seconds = ?, status = ?, summary = ?,"
                " in_flight = 0, heartbeat_at = ? WHERE id = ?",
                (now, summary.get("seconds"), status, json.dumps(summary), now, run_id),
            )

    # -- what the index holds of a tree --------------------------------------------------

    def lookup(self, path: str) -> FileRecord | None:
        return tree.lookup(self.conn, path)

    def stamp(self, path: str) -> Stamp | None:
        return stamps.read_stamp(self.conn, path)

    def stamps_in_dir(self, directory: str) -> dict[str, Stamp]:
        return stamps.read_stamps_in_dir(self.conn, directory)

    def dir_stamp(self, directory: str) -> DirStamp | None:
        return stamps.read_dir_stamp(self.conn, directory)

    def stamp_dirs(self, rows_per_commit: int = 20_000) -> int:
        return stamps.stamp_dirs(self.transaction, rows_per_commit)

    def count_under(self, root: str, limit: int) -> int:
        return tree.count_under(self.conn, root, limit)

    def paths_under(self, root: str) -> Iterator[str]:
        return tree.paths_under(self.conn, root)

    def dirs_under(self, root: str) -> list[str]:
        return tree.dirs_under(self.conn, root)

    def failed_files(self) -> list[tuple[str, str | None]]:
        return tree.failed_files(self.conn)

    # -- writing and the embedding cache -------------------------------------------------

    def commit(self, writes: list[Write], run_id: int) -> None:
        self._writer.commit(writes, run_id)
        self._follow()

    def _follow(self) -> None:
        """Bring the vector file up to what was committed. Best effort: the commit stands
        whatever happens here, and the next search catches the file up or rebuilds it."""
        with contextlib.suppress(sqlite3.Error), self._reading() as conn:
            self._vectors.sync(conn, answer=False)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def cached(self, keys: list[bytes]) -> set[bytes]:
        return cache.cached(self.conn, keys)

    def drop_staged(self) -> int:
        return self._writer.drop_staged()

    def checkpoint(self) -> None:
        """Copy the WAL into the database and empty it, if no reader is in the way."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- maintenance ---------------------------------------------------------------------

    def gc(self) -> int:
        """Drop the cached vectors no chunk uses (as `stats` counts them); those of staged
        parts and failed files' held chunks stay. Returns how many went. The vector file
        is rebuilt without them."""
        with self.transaction() as conn:
            dropped = cache.drop_unused(conn)
        if dropped:
            self._vectors.remove()
            self._follow()
        return dropped

    def held_vectors(self) -> int:
        return staging.held_vectors(self.conn)

    def file_bytes(self) -> tuple[int, int]:
        """The database file's size and how much of it is free pages (reused by later
        writes; `VACUUM` gives it back), after the WAL is copied into it where it can be."""
        self.checkpoint()
        (free,) = self.conn.execute("PRAGMA freelist_count").fetchone()
        (page,) = self.conn.execute("PRAGMA page_size").fetchone()
        return os.path.getsize(self.path), int(free) * int(page)

    def vacuum(self) -> None:
        try:
            self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise store_error(self.path, exc, "cannot vacuum") from exc

    def stats(self) -> StoreStats:
        return read_stats(self.conn, self.path, self.manifest())

    # -- reading chunks and searching ----------------------------------------------------

    def iter_chunks(self, *, vectors: bool = False) -> Iterator[tuple[ChunkRow, bytes | None]]:
        manifest = self.manifest() if vectors else {}
        dims, unit = int(manifest.get("dims") or 0), manifest.get("normalize") == "true"
        yield from queries.iter_chunks(self.conn, self.path, vectors=vectors, dims=dims, unit=unit)

    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        return queries.chunks_by_id(self.conn, ids)

    def text_search(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        return queries.text_search(self.conn, queries.fts5_match(terms), limit)

    def vector_search(
        self,
        query: np.ndarray[Any, np.dtype[np.float32]],
        limit: int,
        on_damaged: Callable[[str, int], None] | None = None,
    ) -> list[tuple[int, float]]:
        unit = self.manifest().get("normalize") == "true"
        return queries.vector_search(
            self.conn, query, limit, unit=unit, on_damaged=on_damaged, copy=self._vectors
        )


if TYPE_CHECKING:

    def _implements_store(store: SqliteStore) -> Store:
        return store  # mypy checks here that `SqliteStore` is a `Store`
