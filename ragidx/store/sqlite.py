"""The SQLite index: one file, WAL mode, one writer, any number of readers."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sqlite3
import time
import types
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from ragidx.chunk.tokens import space_cjk
from ragidx.errors import IndexDamaged, ManifestMismatch, StoreError
from ragidx.models import Chunk, FileStatus
from ragidx.store.damage import (
    damage_hint,
    damaged_by_length,
    is_damage,
    lengths,
    store_error,
    vectors_damaged,
)
from ragidx.store.migrations import SCHEMA_VERSION, migrate, schema_version
from ragidx.store.stamps import DirStamp, Stamp, dir_stamp, dir_stamp_row

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ChunkRow",
    "Embeddings",
    "FileRecord",
    "FileWrite",
    "SqliteStore",
    "Staged",
    "Write",
]

BUSY_TIMEOUT_MS = 30_000
WAL_LIMIT_BYTES = 64 * 1024 * 1024
_VECTOR_SCAN_ROWS = 4096
_IN_LIMIT = 500  # keys per `IN (...)` query, well below SQLite's variable limit
_HAS_DIR = "SELECT 1 FROM files WHERE dir = ? LIMIT 1"
# What `reset` empties; files before the stamps, which its triggers would otherwise refill.
_ALL_TABLES = ("chunks", "embeddings", "files", "dir_stamps", "unstamped", "runs", "manifest")


class FileRecord(NamedTuple):
    """What the index knows of a file. A tuple: the planner reads one per file of a tree."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str | None
    status: str
    reason: str | None
    chunking: str | None
    chunks: int


@dataclass(slots=True)
class FileWrite:
    """One file's change, applied atomically with the others of its group."""

    status: FileStatus
    path: str
    size: int = 0
    mtime_ns: int = 0
    content_hash: str | None = None
    reason: str | None = None
    encoding: str | None = None
    format: str | None = None
    chunking: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    """Each chunk's embedding key; the vector is in the cache by the time the file commits."""
    touch_only: bool = False
    stage: int | None = None
    """A big file's chunks were committed in `Staged` parts under a staging row; this write
    puts that row in the place of the file's old version."""
    staged_chunks: int = 0
    staged_tokens: int = 0
    held: list[tuple[Chunk, bytes]] = field(default_factory=list)
    """A failed file's chunks and keys, of which those whose vectors came back are held
    (`_hold`): `gc` keeps what was paid for until the file is indexed, skipped, removed or
    gone."""

    @property
    def chunk_count(self) -> int:
        return self.staged_chunks if self.stage is not None else len(self.chunks)

    @property
    def token_count(self) -> int:
        return self.staged_tokens if self.stage is not None else sum(c.tokens for c in self.chunks)


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Vectors received from the embedder, cached by key before any file uses them."""

    keys: list[bytes]
    vectors: np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True, slots=True)
class Staged:
    """Consecutive chunks of a big file, stored under a staging row that search, stats and
    export do not see until the file's `FileWrite` (with the same `stage`) commits."""

    stage: int
    path: str
    chunks: list[Chunk]
    keys: list[bytes]


STAGING = "staging"
_HELD_STAGE = 0  # runs number their stages from 1
# What `stats` counts and `gc` drops as unused: a cached vector no chunk refers to. Chunks of
# staging rows count: a big file's parts staged before a crash, a failed file's held chunks.
_UNUSED = "NOT EXISTS (SELECT 1 FROM chunks c WHERE c.embedding_id = e.id)"


def _staging_path(stage: int, path: str) -> str:
    # NUL never occurs in a real path, so this never meets one.
    return f"\0staging\0{stage}\0{path}"


def _staged_as(staging_path: str) -> tuple[int, str]:
    """`_staging_path` undone: the stage and the file's path."""
    _, _, stage, path = staging_path.split("\0", 3)
    return int(stage), path


_STAGING_ROWS = "SELECT id, path FROM files WHERE status = ?"


Write = FileWrite | Embeddings | Staged


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A stored chunk, as search and export read it."""

    id: int
    path: str
    ordinal: int
    text: str
    input: str | None
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    heading_path: tuple[str, ...]
    tokens: int


_CHUNK_COLUMNS = (
    "c.id, f.path, c.ordinal, c.text, c.input, c.char_start, c.char_end,"
    " c.line_start, c.line_end, c.heading_path, c.tokens"
)


def _chunk_row(row: tuple[Any, ...]) -> ChunkRow:
    return ChunkRow(
        id=row[0],
        path=row[1],
        ordinal=row[2],
        text=row[3],
        input=row[4],
        char_start=row[5],
        char_end=row[6],
        line_start=row[7],
        line_end=row[8],
        heading_path=tuple(json.loads(row[9])),
        tokens=row[10],
    )


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
    """An open index database. Not shared between threads at the same time."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._pending_manifest: dict[str, str] | None = None
        self._deferred: list[Write] | None = None  # a deferred reset's writes, until it commits
        self._holds: bool | None = None  # whether any file's vectors are held (`_hold`)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True, upgrade: bool = True) -> SqliteStore:
        """Open (and with `create`, make) the index at `path`, migrating its schema; or,
        without `upgrade`, read only, refusing a schema that needs migrating."""
        if not create and not os.path.exists(path):
            raise StoreError(
                f"no index at {path}", hint="run `ragidx index PATH` first, or pass --db"
            )
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the index {path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not upgrade:
                conn.execute("PRAGMA query_only = ON")  # not even the journal mode changes
            else:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # After a checkpoint the WAL file shrinks back to this; it is rewritten, not grown.
            conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.create_function("space_cjk", 1, space_cjk, deterministic=True)
            if upgrade:
                migrate(conn)
            elif (version := schema_version(conn)) != SCHEMA_VERSION:
                raise StoreError(
                    f"the index {path} has schema version {version}, not {SCHEMA_VERSION}",
                    hint="index once without --dry-run to upgrade it",
                )
        except sqlite3.Error as exc:
            conn.close()
            raise store_error(path, exc, "cannot use") from exc
        except StoreError:
            conn.close()
            raise
        return cls(conn, path)

    @classmethod
    def open_for_reading(cls, path: Path) -> SqliteStore:
        """For commands that only read. Where the index and its directory can be written, as
        `open`; where not (a CI artifact, a container image, a read-only mount), read-only,
        without the `-shm` file SQLite could not create there."""
        if not os.path.exists(path) or _writable(path):
            return cls.open(path, create=False)
        conn = _connect_read_only(path)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA query_only = ON")
            conn.create_function("space_cjk", 1, space_cjk, deterministic=True)
            if (version := schema_version(conn)) != SCHEMA_VERSION:
                raise StoreError(
                    f"the index {path} has schema version {version}, not {SCHEMA_VERSION},"
                    " and cannot be upgraded where it is read-only",
                    hint="run any ragidx command on it once where it can be written",
                )
        except sqlite3.Error as exc:
            conn.close()
            raise store_error(path, exc, "cannot use") from exc
        except StoreError:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any error."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _write_error(self.path, exc) from exc
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _write_error(self.path, exc) from exc
            raise

    # -- manifest ------------------------------------------------------------------------

    def manifest(self) -> dict[str, str]:
        """The vector space and settings the index was built with (none while a reset waits)."""
        if self._deferred is not None:
            return {}
        return dict(self.conn.execute("SELECT key, value FROM manifest").fetchall())

    def check_manifest(
        self, provider: str, model: str, dims: int, binding: Mapping[str, str] | None = None
    ) -> None:
        """Refuse another vector space than the one recorded (dims 0: not known yet).

        `binding` holds settings that change the vectors (`normalize`): they must match too."""
        wanted = {"provider": provider, "model": model, "dims": str(dims) if dims else None}
        wanted.update(binding or {})
        _check_space(self.path, _with_legacy_binding(self.conn, self.manifest(), wanted), wanted)

    def claim_manifest(
        self,
        provider: str,
        model: str,
        dims: int,
        settings: Mapping[str, int | str],
        *,
        binding: Mapping[str, str] | None = None,
    ) -> None:
        """Refuse a vector space other than the one recorded; record this one, and `settings`
        (the server's base URL among them), with the first file that stores vectors.

        Nothing is written now: a run that stores nothing (every file unchanged, or every
        request failed) binds nothing, and leaves the server the index names as it was.
        """
        wanted = {"provider": provider, "model": model, "dims": str(dims), **(binding or {})}
        have = self.manifest()
        _check_space(self.path, _with_legacy_binding(self.conn, have, wanted), wanted)
        self._pending_manifest = {**wanted, **{k: str(v) for k, v in settings.items()}}

    @property
    def resetting(self) -> bool:
        """Whether a deferred reset waits for the first vectors of the run."""
        return self._deferred is not None

    def reset(self, *, defer: bool = False) -> None:
        """Forget everything: files, chunks, cached vectors, runs and the manifest.

        With `defer`, nothing changes yet: the index is emptied in the transaction of the
        first `commit` that carries vectors, the proof that the new embedder answers. Until
        then `manifest` reads as empty and writes without vectors (failed or skipped files)
        are held back, so a run that stops or fails before it has any vectors (a server that
        refuses the key, or is not there) leaves the index as it was. A run with nothing to
        embed at all resets it if it completes (`complete_reset`).
        """
        if defer:
            self._deferred = []
            return
        with self.transaction() as conn:
            _empty(conn)

    # -- runs ----------------------------------------------------------------------------

    def begin_run(self, roots: Iterable[str]) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (started_at, status, roots) VALUES (?, 'running', ?)",
                (time.time(), json.dumps(list(roots))),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_run(self, run_id: int, status: str, summary: dict[str, object]) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, seconds = ?, status = ?, summary = ?"
                " WHERE id = ?",
                (time.time(), summary.get("seconds"), status, json.dumps(summary), run_id),
            )

    # -- reading files -------------------------------------------------------------------

    _FILE_COLUMNS = "path, size, mtime_ns, content_hash, status, reason, chunking, chunks"

    def lookup(self, path: str) -> FileRecord | None:
        row = self.conn.execute(
            f"SELECT {self._FILE_COLUMNS} FROM files WHERE path = ?", (path,)
        ).fetchone()
        return FileRecord(*row) if row else None

    _STAMP_COLUMNS = "path, size, mtime_ns, status, chunking, chunks, reason"

    def stamp(self, path: str) -> Stamp | None:
        row = self.conn.execute(
            f"SELECT {self._STAMP_COLUMNS} FROM files WHERE path = ?", (path,)
        ).fetchone()
        return Stamp(*row) if row else None

    def stamps_in_dir(self, directory: str) -> dict[str, Stamp]:
        rows = self.conn.execute(
            f"SELECT {self._STAMP_COLUMNS} FROM files WHERE dir = ?", (directory,)
        )
        new = tuple.__new__  # `_make` without its Python frame: a row for every file of a tree
        return {row[0]: new(Stamp, row) for row in rows}

    def dir_stamp(self, directory: str) -> DirStamp | None:
        """The directory's stamp, where it has a usable one (see `stamps`)."""
        row = self.conn.execute(
            "SELECT chunking, digest, chunks, notes FROM dir_stamps WHERE dir = ?", (directory,)
        ).fetchone()
        return dir_stamp(row) if row else None

    def stamp_dirs(self, rows_per_commit: int = 20_000) -> int:
        """Write a stamp for each directory whose rows changed since it had one (the triggers
        list them in `unstamped`); returns how many. A re-run of an unchanged tree then reads
        a row per directory, not per file."""
        written = 0
        while True:
            with self.transaction() as conn:
                batch = [d for (d,) in conn.execute("SELECT dir FROM unstamped LIMIT 1000")]
                if not batch:
                    return written
                rows = 0
                for directory in batch:
                    if directory:  # '': staging rows, which no walk plans
                        rows += self._stamp_dir(conn, directory)
                    conn.execute("DELETE FROM unstamped WHERE dir = ?", (directory,))
                    written += 1
                    if rows >= rows_per_commit:
                        break

    def _stamp_dir(self, conn: sqlite3.Connection, directory: str) -> int:
        stamps = [
            Stamp(*row)
            for row in conn.execute(
                f"SELECT {self._STAMP_COLUMNS} FROM files WHERE dir = ? ORDER BY path",
                (directory,),
            )
        ]
        if stamps:  # else the directory's files are all gone from the index
            conn.execute(
                "INSERT OR REPLACE INTO dir_stamps (dir, chunking, digest, chunks, notes)"
                " VALUES (?, ?, ?, ?, ?)",
                (directory, *dir_stamp_row(stamps)),
            )
        return len(stamps)

    def count_under(self, root: str, limit: int) -> int:
        """How many files the index holds at or below `root`, counting no further than
        `limit`."""
        (count,) = self.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM files"
            " WHERE dir = ? OR (dir > ? AND dir < ?) LIMIT ?)",
            (root, root + "/", root + "0", limit),
        ).fetchone()
        return int(count)

    def paths_under(self, root: str) -> Iterator[str]:
        """The files the index holds below the directory `root`, in path order."""
        rows = self.conn.execute(
            "SELECT path FROM files WHERE path > ? AND path < ? ORDER BY path",
            (root + "/", root + "0"),
        )
        return (path for (path,) in rows)

    def dirs_under(self, root: str) -> list[str]:
        """Directories at or below `root` that hold indexed files, in order."""
        # One index seek per directory: DISTINCT would read every file's entry, a tenth of a
        # second for 100,000 files on a re-run that has nothing else to do.
        seek = "SELECT dir FROM files WHERE dir > ? AND dir < ? ORDER BY dir LIMIT 1"
        end = root + "0"  # '0' sorts right after '/'
        dirs = [root] if self.conn.execute(_HAS_DIR, (root,)).fetchone() else []
        after = root + "/"
        while row := self.conn.execute(seek, (after, end)).fetchone():
            dirs.append(after := row[0])
        return dirs

    # -- writing -------------------------------------------------------------------------

    def commit(self, writes: list[Write], run_id: int) -> None:
        """Apply a group of changes in one transaction, in order: each file is all old or all
        new, and the vectors a file uses are cached before it. A deferred reset holds the
        writes back until a group carries vectors, then empties the index in its transaction."""
        held = self._deferred
        if held is not None:
            if not any(map(_carries_vectors, writes)):
                held.extend(writes)  # small: failed and skipped files, without chunks
                return
            writes = [*held, *writes]
        self._commit(writes, run_id, reset=held is not None)

    def complete_reset(self, run_id: int) -> None:
        """Carry out a deferred reset in a run that had nothing to embed and completed
        without a failure: nothing was at stake."""
        if self._deferred is not None:
            self._commit(self._deferred, run_id, reset=True)

    def _commit(self, writes: list[Write], run_id: int, *, reset: bool) -> None:
        now = time.time()
        files = [w for w in writes if isinstance(w, FileWrite)]
        stores_vectors = any(w.status is FileStatus.INDEXED and w.chunk_count for w in files)
        with self.transaction() as conn:
            if reset:
                _empty(conn, keep_run=run_id)
            for write in writes:
                if isinstance(write, Embeddings):
                    _cache(conn, write)
                elif isinstance(write, Staged):
                    _stage(conn, write)
                else:
                    self._apply(conn, write, run_id, now)
            if self._pending_manifest and stores_vectors:
                _write_manifest(conn, self._pending_manifest)
        self._deferred = None
        if stores_vectors:
            self._pending_manifest = None

    def _apply(self, conn: sqlite3.Connection, w: FileWrite, run_id: int, now: float) -> None:
        if w.status is not FileStatus.FAILED and not w.touch_only and self._held(conn):
            self._let_go(conn, w.path)
        if w.stage is not None:
            staged = _staging_id(conn, w.stage, w.path)
            if w.status is FileStatus.INDEXED and staged is not None:
                self._unstage(conn, w, staged, run_id, now)
                return
            # A failed file's parts stay staged, their vectors kept: the next run's start
            # holds them for the file (`drop_staged`), whose retry finds them in the cache.
            if staged is not None and w.status is not FileStatus.FAILED:
                _drop_file(conn, staged)
        if w.status is FileStatus.REMOVED:
            row = conn.execute("SELECT id FROM files WHERE path = ?", (w.path,)).fetchone()
            if row is not None:
                _drop_chunks(conn, row[0])
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
                _hold(conn, w.path, w.held)
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
            " format, chunking, chunks, tokens, run_id, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
            " size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " content_hash = excluded.content_hash, status = excluded.status,"
            " reason = excluded.reason, encoding = excluded.encoding, format = excluded.format,"
            " chunking = excluded.chunking, chunks = excluded.chunks, tokens = excluded.tokens,"
            " run_id = excluded.run_id, updated_at = excluded.updated_at RETURNING id",
            _file_values(w, run_id, now),
        ).fetchone()
        _drop_chunks(conn, file_id)
        if w.chunks:
            _insert_chunks(conn, file_id, w.chunks, w.keys)
            _index_text(conn, file_id)

    def _let_go(self, conn: sqlite3.Connection, path: str) -> None:
        """Indexed, skipped or removed: what was held for the file is needed no more."""
        if (held := _staging_id(conn, _HELD_STAGE, path)) is not None:
            _drop_file(conn, held)

    def _held(self, conn: sqlite3.Connection) -> bool:
        """Whether any file's vectors may be held: looked up once, then kept up to date."""
        if self._holds is None:
            found = conn.execute("SELECT 1 FROM files WHERE status = ? LIMIT 1", (STAGING,))
            self._holds = found.fetchone() is not None
        return self._holds

    def _unstage(
        self, conn: sqlite3.Connection, w: FileWrite, staged: int, run_id: int, now: float
    ) -> None:
        """The staging row, with its chunks, becomes the file; the old version goes."""
        old = conn.execute("SELECT id FROM files WHERE path = ?", (w.path,)).fetchone()
        if old is not None:
            _drop_file(conn, old[0])
        conn.execute(
            "UPDATE files SET path = ?, dir = ?, size = ?, mtime_ns = ?, content_hash = ?,"
            " status = ?, reason = ?, encoding = ?, format = ?, chunking = ?, chunks = ?,"
            " tokens = ?, run_id = ?, updated_at = ? WHERE id = ?",
            (*_file_values(w, run_id, now), staged),
        )

    # -- the embedding cache -------------------------------------------------------------

    def cached(self, keys: list[bytes]) -> set[bytes]:
        """Which of `keys` the cache holds a vector for."""
        found: set[bytes] = set()
        for start in range(0, len(keys), _IN_LIMIT):
            part = keys[start : start + _IN_LIMIT]
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(f"SELECT key FROM embeddings WHERE key IN ({marks})", part)
            found.update(row[0] for row in rows)
        return found

    def drop_staged(self) -> int:
        """Clear what runs that never finished staged; only the writer may. A big file's
        staged parts become held for the file (`_hold`): paid for, they stay until it is
        indexed, skipped or removed. What is held for a file that is gone goes. Returns how
        many files had parts staged."""
        moved = 0
        with self.transaction() as conn:
            rows = conn.execute(_STAGING_ROWS, (STAGING,)).fetchall()
            for file_id, path in rows:
                stage, real = _staged_as(path)
                if not os.path.lexists(real):
                    _drop_file(conn, file_id)
                elif stage != _HELD_STAGE:
                    self._let_go(conn, real)
                    held = _staging_path(_HELD_STAGE, real)
                    conn.execute("UPDATE files SET path = ? WHERE id = ?", (held, file_id))
                    moved += 1
        self._holds = None  # looked up again when needed
        return moved

    def gc(self) -> int:
        """Drop the cached vectors no chunk uses (`_UNUSED`, as `stats` counts them); those
        of staged parts and failed files' held chunks stay. Returns how many went."""
        with self.transaction() as conn:
            return conn.execute(f"DELETE FROM embeddings AS e WHERE {_UNUSED}").rowcount

    def held_vectors(self) -> int:
        """Cached vectors that only staging rows use: paid for, kept for files not yet
        indexed (a big file a run never finished, a failed file's chunks)."""
        (held,) = self.conn.execute(
            "SELECT count(DISTINCT c.embedding_id) FROM chunks c JOIN files f"
            " ON f.id = c.file_id AND f.status = ? WHERE NOT EXISTS (SELECT 1 FROM chunks o"
            " JOIN files g ON g.id = o.file_id AND g.status != ?"
            " WHERE o.embedding_id = c.embedding_id)",
            (STAGING, STAGING),
        ).fetchone()
        return int(held)

    def file_bytes(self) -> tuple[int, int]:
        """The database file's size and how much of it is free pages (reused by later
        writes; `VACUUM` gives it back), after the WAL is copied into it where it can be."""
        self.checkpoint()
        (free,) = self.conn.execute("PRAGMA freelist_count").fetchone()
        (page,) = self.conn.execute("PRAGMA page_size").fetchone()
        return os.path.getsize(self.path), int(free) * int(page)

    def checkpoint(self) -> None:
        """Copy the WAL into the database and empty it, if no reader is in the way."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def vacuum(self) -> None:
        try:
            self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise store_error(self.path, exc, "cannot vacuum") from exc

    # -- reporting -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        conn = self.conn
        stored = (FileStatus.INDEXED, FileStatus.SKIPPED, FileStatus.FAILED)
        by_status = dict.fromkeys((s.value for s in stored), 0)
        by_status |= dict(
            conn.execute(
                "SELECT status, count(*) FROM files WHERE status != ? GROUP BY status", (STAGING,)
            )
        )
        chunks, tokens = conn.execute(
            "SELECT count(*), coalesce(sum(c.tokens), 0) FROM chunks c"
            " JOIN files f ON f.id = c.file_id AND f.status != ?",
            (STAGING,),
        ).fetchone()
        (vectors,) = conn.execute("SELECT count(*) FROM vectors").fetchone()
        (cached,) = conn.execute("SELECT count(*) FROM embeddings").fetchone()
        (unused,) = conn.execute(f"SELECT count(*) FROM embeddings e WHERE {_UNUSED}").fetchone()
        types: Counter[str] = Counter()
        for (path,) in conn.execute("SELECT path FROM files WHERE status = 'indexed'"):
            types[Path(path).suffix.lower() or "(none)"] += 1
        manifest = self.manifest()
        last = conn.execute(
            "SELECT id, started_at, finished_at, seconds, status, roots, summary FROM runs"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
        size = sum(
            os.path.getsize(p) for p in (self.path, Path(f"{self.path}-wal")) if os.path.exists(p)
        )
        return {
            "db": str(self.path),
            "db_bytes": size,
            "files": by_status,
            "chunks": chunks,
            "tokens": tokens,
            "vectors": vectors,
            "cached_vectors": cached,
            "unused_vectors": unused,
            "held_vectors": self.held_vectors(),
            "failed_not_stored": _failed_not_stored(conn, last),
            "provider": manifest.get("provider"),
            "model": manifest.get("model"),
            "dims": int(manifest["dims"]) if "dims" in manifest else None,
            "chunk_tokens": int(manifest["chunk_tokens"]) if "chunk_tokens" in manifest else None,
            "chunk_overlap": int(manifest["chunk_overlap"])
            if "chunk_overlap" in manifest
            else None,
            "file_types": dict(types.most_common()),
            "last_run": _run_dict(last) if last else None,
        }

    def failed_files(self) -> list[tuple[str, str | None]]:
        return self.conn.execute(
            "SELECT path, reason FROM files WHERE status = 'failed' ORDER BY path"
        ).fetchall()

    def iter_chunks(self, *, vectors: bool = False) -> Iterator[tuple[ChunkRow, bytes | None]]:
        """Every chunk in path and ordinal order, streamed from a cursor."""
        # The cache's table, not the `vectors` view: SQLite would copy the view whole first.
        join = "LEFT JOIN embeddings e ON e.id = c.embedding_id" if vectors else ""
        blob = ", e.vector" if vectors else ", NULL"
        manifest = self.manifest() if vectors else {}
        dims, unit = int(manifest.get("dims") or 0), manifest.get("normalize") == "true"
        rows = self.conn.execute(
            f"SELECT {_CHUNK_COLUMNS}{blob} FROM chunks c JOIN files f ON f.id = c.file_id {join}"
            " WHERE f.status != ? ORDER BY f.path, c.ordinal",
            (STAGING,),
        )
        while batch := rows.fetchmany(_VECTOR_SCAN_ROWS // 16):
            stored = [row for row in batch if row[11] is not None]
            if (
                dims
                and stored
                and (bad := vectors_damaged([r[11] for r in stored], dims, unit)).any()
            ):
                path = stored[int(bad.argmax())][1]
                raise IndexDamaged(
                    f"the index {self.path} is damaged (a vector of {path} does not read back)",
                    hint=damage_hint(self.path),
                )
            for row in batch:
                yield _chunk_row(row), row[11]

    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        wanted = list(ids)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self.conn.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id"
            f" WHERE c.id IN ({marks}) AND f.status != ?",
            [*wanted, STAGING],
        )
        return {row[0]: _chunk_row(row) for row in rows}

    # -- searching -----------------------------------------------------------------------

    def text_search(self, match: str, limit: int) -> list[tuple[int, float]]:
        """Chunk ids and BM25 scores (higher is better) for an FTS5 MATCH expression."""
        rows = self.conn.execute(
            "SELECT t.rowid, bm25(chunks_fts) FROM chunks_fts t"
            " JOIN chunks c ON c.id = t.rowid JOIN files f ON f.id = c.file_id"
            " WHERE chunks_fts MATCH ? AND f.status != ? ORDER BY bm25(chunks_fts) LIMIT ?",
            (match, STAGING, limit),
        )
        return [(rowid, -score) for rowid, score in rows]

    def vector_search(
        self,
        query: np.ndarray[Any, np.dtype[np.float32]],
        limit: int,
        on_damaged: Callable[[str, int], None] | None = None,
    ) -> list[tuple[int, float]]:
        """Chunk ids and cosine similarities, best first; scans vectors in slices. A vector
        that did not survive in the file is not ranked: `on_damaged(path, count)` hears of
        them, file by file."""
        import numpy as np

        best_ids = np.empty(0, dtype=np.int64)
        best_scores = np.empty(0, dtype=np.float32)
        q = query.astype(np.float32)
        q /= max(float(np.linalg.norm(q)), 1e-12)
        unit = self.manifest().get("normalize") == "true"
        damaged: list[int] = []
        cursor = self.conn.execute("SELECT chunk_id, vector FROM vectors")
        size = 4 * len(q)
        while rows := cursor.fetchmany(_VECTOR_SCAN_ROWS):
            if any(len(r[1]) != size for r in rows):
                damaged += [r[0] for r in rows if len(r[1]) != size]
                rows = [r for r in rows if len(r[1]) == size]
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(-1, len(q))
            norms = lengths(matrix)
            if (bad := damaged_by_length(norms, unit)).any():
                damaged += ids[bad].tolist()
                ids, matrix, norms = ids[~bad], matrix[~bad], norms[~bad]
            scores = (matrix @ q) / np.maximum(norms, 1e-12)
            best_ids = np.concatenate([best_ids, ids])
            best_scores = np.concatenate([best_scores, scores.astype(np.float32)])
            if len(best_ids) > limit:
                keep = np.argpartition(-best_scores, limit)[:limit]
                best_ids, best_scores = best_ids[keep], best_scores[keep]
        if damaged and on_damaged is not None:
            for path, count in self._paths_of(damaged).items():
                on_damaged(path, count)
        order = np.argsort(-best_scores, kind="stable")
        return [(int(best_ids[i]), float(best_scores[i])) for i in order]

    def _paths_of(self, chunk_ids: list[int]) -> Counter[str]:
        """How many of `chunk_ids` each file holds."""
        found: Counter[str] = Counter()
        for start in range(0, len(chunk_ids), _IN_LIMIT):
            part = chunk_ids[start : start + _IN_LIMIT]
            found.update(
                dict(
                    self.conn.execute(
                        "SELECT f.path, count(*) FROM chunks c JOIN files f ON f.id = c.file_id"
                        f" WHERE c.id IN ({','.join('?' * len(part))}) GROUP BY f.path",
                        part,
                    )
                )
            )
        return found


def _file_values(w: FileWrite, run_id: int, now: float) -> tuple[Any, ...]:
    """A file's row, in the order of `files`' columns from `path` to `updated_at`."""
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
    )


_CHUNK_INSERT = (
    "INSERT INTO chunks (file_id, ordinal, text, input, char_start, char_end, line_start,"
    " line_end, heading_path, tokens, embedding_id)"
)


def _chunk_values(c: Chunk) -> tuple[Any, ...]:
    return (
        c.text,
        None if c.input == c.text else c.input,
        c.char_start,
        c.char_end,
        c.line_start,
        c.line_end,
        json.dumps(c.heading_path, ensure_ascii=False),
        c.tokens,
    )


def _insert_chunks(
    conn: sqlite3.Connection, file_id: int, chunks: list[Chunk], keys: list[bytes]
) -> None:
    conn.executemany(
        f"{_CHUNK_INSERT} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " (SELECT id FROM embeddings WHERE key = ?))",
        [(file_id, c.ordinal, *_chunk_values(c), key) for c, key in zip(chunks, keys, strict=True)],
    )


def _index_text(conn: sqlite3.Connection, file_id: int, from_ordinal: int = 0) -> None:
    """Full-text rows for a file's new chunks; every chunk must have its cached vector."""
    where = "file_id = ? AND ordinal >= ?"
    (missing,) = conn.execute(
        f"SELECT count(*) FROM chunks WHERE {where} AND embedding_id IS NULL",
        (file_id, from_ordinal),
    ).fetchone()
    if missing:
        # A bug, never a user's error: refuse to store chunks that search could not find.
        raise StoreError(f"internal error: {missing} chunks without a cached vector")
    conn.execute(
        f"INSERT INTO chunks_fts (rowid, text) SELECT id, space_cjk(text) FROM chunks"
        f" WHERE {where}",
        (file_id, from_ordinal),
    )


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


def _cache(conn: sqlite3.Connection, e: Embeddings) -> None:
    conn.executemany(
        "INSERT INTO embeddings (key, vector) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        zip(e.keys, (v.astype("<f4").tobytes() for v in e.vectors), strict=True),
    )


def _stage(conn: sqlite3.Connection, part: Staged) -> None:
    path = _staging_path(part.stage, part.path)
    (file_id,) = conn.execute(
        "INSERT INTO files (path, dir, status, updated_at) VALUES (?, '', ?, ?)"
        " ON CONFLICT (path) DO UPDATE SET updated_at = excluded.updated_at RETURNING id",
        (path, STAGING, time.time()),
    ).fetchone()
    if not part.chunks:
        return
    _insert_chunks(conn, file_id, part.chunks, part.keys)
    _index_text(conn, file_id, part.chunks[0].ordinal)


def _hold(conn: sqlite3.Connection, path: str, pieces: list[tuple[Chunk, bytes]]) -> None:
    """Stage a failed file's chunks that have their vectors under stage 0, which no run
    uses: `gc` keeps the vectors until the file is indexed, skipped, removed or gone."""
    old = _staging_id(conn, _HELD_STAGE, path)
    if old is not None:
        _drop_file(conn, old)
    (file_id,) = conn.execute(
        "INSERT INTO files (path, dir, status, updated_at) VALUES (?, '', ?, ?) RETURNING id",
        (_staging_path(_HELD_STAGE, path), STAGING, time.time()),
    ).fetchone()
    _insert_chunks(conn, file_id, [c for c, _ in pieces], [k for _, k in pieces])
    conn.execute("DELETE FROM chunks WHERE file_id = ? AND embedding_id IS NULL", (file_id,))
    _index_text(conn, file_id)


def _failed_not_stored(conn: sqlite3.Connection, last: tuple[Any, ...] | None) -> int:
    """Failures of the last run that the index holds no row for: a name that is not UTF-8
    (SQLite stores text), a directory that could not be read."""
    if last is None or not last[6]:
        return 0
    reported = int(json.loads(last[6]).get("failed", 0))
    (stored,) = conn.execute(
        "SELECT count(*) FROM files WHERE status = 'failed' AND run_id = ?", (last[0],)
    ).fetchone()
    return max(reported - int(stored), 0)


def _staging_id(conn: sqlite3.Connection, stage: int, path: str) -> int | None:
    row = conn.execute("SELECT id FROM files WHERE path = ?", (_staging_path(stage, path),))
    found = row.fetchone()
    return int(found[0]) if found else None


def _drop_file(conn: sqlite3.Connection, file_id: int) -> None:
    _drop_chunks(conn, file_id)
    conn.execute("DELETE FROM files WHERE id = ?", (file_id,))


def _check_space(path: Path, have: dict[str, str], wanted: Mapping[str, str | None]) -> None:
    for key, value in wanted.items():
        if value is not None and key in have and have[key] != value:
            raise ManifestMismatch(
                f"the index {path} was built with {key} {have[key]!r}, not {value!r}",
                hint="use the same embedder settings, or pass --reset to start over",
            )


def _with_legacy_binding(
    conn: sqlite3.Connection, have: dict[str, str], wanted: Mapping[str, str | None]
) -> dict[str, str]:
    """An index from before `normalize` was recorded stored vectors as servers sent them:
    whether it holds unit vectors is read off a sample of them."""
    if "normalize" not in wanted or "normalize" in have or "dims" not in have:
        return have
    import numpy as np

    from ragidx.embed.base import is_unit

    blobs = [blob for (blob,) in conn.execute("SELECT vector FROM embeddings LIMIT 256")]
    if not blobs:
        return have
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1)
    return {**have, "normalize": "true" if is_unit(matrix) else "false"}


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to an index SQLite may not write beside. Reading a WAL needs
    its `-shm` file, which SQLite can use read-only where it exists but cannot create here;
    without a WAL there is nothing to miss, and the file is opened as immutable."""
    wal = Path(f"{path}-wal")
    try:
        wal_bytes = wal.stat().st_size
    except FileNotFoundError:
        # No connection has the index open (the last one to close removes the WAL): no
        # writer can be changing it under an immutable reader.
        return _connect_uri(path, "mode=ro&immutable=1")
    conn = _connect_uri(path, "mode=ro")
    try:
        schema_version(conn)  # the first read opens the WAL, and its -shm
        return conn
    except sqlite3.Error as exc:
        conn.close()
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_CANTOPEN":
            raise store_error(path, exc, "cannot use") from exc
        if wal_bytes == 0:
            return _connect_uri(path, "mode=ro&immutable=1")  # a WAL left empty
        raise StoreError(
            f"cannot read the index {path}: its last changes are in {wal}, which SQLite"
            f" reads only with a {path}-shm file, and cannot create one here",
            hint="open the index once where it can be written (any ragidx command folds the"
            " WAL in), or copy the index with its -wal file to a writable directory",
        ) from exc


def _connect_uri(path: Path, query: str) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(os.fsencode(os.path.abspath(path))) + "?" + query
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise store_error(path, exc, "cannot open") from exc


def _write_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """A failed write; the transaction was rolled back, so the index is as it was."""
    if is_damage(exc):
        return store_error(path, exc)
    name = getattr(exc, "sqlite_errorname", "")
    hint = None
    if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
        hint = (
            "free some disk space (or raise the file size limit) and run again;"
            " everything committed so far is kept"
        )
    return StoreError(f"cannot write to the index {path}: {exc}", hint=hint)


def _write_manifest(conn: sqlite3.Connection, rows: dict[str, str]) -> None:
    conn.executemany(
        "INSERT INTO manifest (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        rows.items(),
    )


def _drop_chunks(conn: sqlite3.Connection, file_id: int) -> None:
    """Delete a file's chunks, their vectors and their full-text rows."""
    conn.execute(
        "INSERT INTO chunks_fts (chunks_fts, rowid, text)"
        " SELECT 'delete', id, space_cjk(text) FROM chunks WHERE file_id = ?",
        (file_id,),
    )
    conn.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))


def _run_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    run_id, started, finished, seconds, status, roots, summary = row
    return {
        "id": run_id,
        "started_at": started,
        "finished_at": finished,
        "seconds": seconds,
        "status": status,
        "roots": json.loads(roots),
        "summary": json.loads(summary) if summary else None,
    }
