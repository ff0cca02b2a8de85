"""The SQLite index: one file, WAL mode, one writer, any number of readers."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ManifestMismatch, StoreError
from ..models import Chunk, FileStatus
from ..tokens import space_cjk
from .migrations import migrate

__all__ = ["ChunkRow", "FileRecord", "FileWrite", "SqliteStore"]

BUSY_TIMEOUT_MS = 30_000
_VECTOR_SCAN_ROWS = 4096


@dataclass(frozen=True, slots=True)
class FileRecord:
    """What the index knows of a file."""

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
    vectors: np.ndarray[Any, np.dtype[np.float32]] | None = None
    touch_only: bool = False


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


class SqliteStore:
    """An open index database. Not shared between threads at the same time."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._pending_manifest: dict[str, str] | None = None

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> SqliteStore:
        """Open (and with `create`, make) the index at `path`, migrating its schema."""
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
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot use the index {path}: {exc}") from exc
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
            raise StoreError(f"cannot write to the index {self.path}: {exc}") from exc
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot write to the index {self.path}: {exc}") from exc
            raise

    # -- manifest ------------------------------------------------------------------------

    def manifest(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM manifest").fetchall())

    def claim_manifest(
        self,
        provider: str,
        model: str,
        dims: int,
        settings: dict[str, int | str],
        *,
        provisional: bool = False,
    ) -> None:
        """Record the vector space on first use; refuse a different one afterwards.

        A `provisional` claim (dims learned from one answer) is checked now but written with
        the first file that stores vectors, so one bad answer cannot bind the index.
        """
        wanted = {"provider": provider, "model": model, "dims": str(dims)}
        with self.transaction() as conn:
            have = dict(conn.execute("SELECT key, value FROM manifest").fetchall())
            for key, value in wanted.items():
                if key in have and have[key] != value:
                    raise ManifestMismatch(
                        f"the index {self.path} was built with {key} {have[key]!r}, not {value!r}",
                        hint="use the same embedder settings, or pass --reset to start over",
                    )
            rows = {**wanted, **{k: str(v) for k, v in settings.items()}}
            if provisional and "dims" not in have:
                self._pending_manifest = rows
            else:
                _write_manifest(conn, rows)

    def reset(self) -> None:
        """Forget everything: files, chunks, vectors, runs and the manifest."""
        with self.transaction() as conn:
            for table in ("vectors", "chunks", "files", "runs", "manifest"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('delete-all')")

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

    def files_in_dir(self, directory: str) -> dict[str, FileRecord]:
        rows = self.conn.execute(
            f"SELECT {self._FILE_COLUMNS} FROM files WHERE dir = ?", (directory,)
        )
        return {row[0]: FileRecord(*row) for row in rows}

    def dirs_under(self, root: str) -> list[str]:
        """Directories at or below `root` that hold indexed files."""
        rows = self.conn.execute(
            "SELECT DISTINCT dir FROM files WHERE dir = ? OR (dir >= ? AND dir < ?) ORDER BY dir",
            (root, root + "/", root + "0"),  # '0' sorts right after '/'
        )
        return [row[0] for row in rows]

    # -- writing -------------------------------------------------------------------------

    def commit(self, writes: list[FileWrite], run_id: int) -> None:
        """Apply a group of file changes in one transaction: each file is all old or all new."""
        now = time.time()
        with self.transaction() as conn:
            for write in writes:
                self._apply(conn, write, run_id, now)
            stores_vectors = any(w.status is FileStatus.INDEXED and w.chunks for w in writes)
            if self._pending_manifest and stores_vectors:
                _write_manifest(conn, self._pending_manifest)
        if stores_vectors:
            self._pending_manifest = None

    def _apply(self, conn: sqlite3.Connection, w: FileWrite, run_id: int, now: float) -> None:
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
            (
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
                len(w.chunks),
                sum(c.tokens for c in w.chunks),
                run_id,
                now,
            ),
        ).fetchone()
        _drop_chunks(conn, file_id)
        if not w.chunks:
            return
        conn.executemany(
            "INSERT INTO chunks (file_id, ordinal, text, input, char_start, char_end,"
            " line_start, line_end, heading_path, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    file_id,
                    c.ordinal,
                    c.text,
                    None if c.input == c.text else c.input,
                    c.char_start,
                    c.char_end,
                    c.line_start,
                    c.line_end,
                    json.dumps(c.heading_path, ensure_ascii=False),
                    c.tokens,
                )
                for c in w.chunks
            ],
        )
        assert w.vectors is not None and len(w.vectors) == len(w.chunks)
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM chunks WHERE file_id = ? ORDER BY ordinal", (file_id,)
            )
        ]
        conn.executemany(
            "INSERT INTO vectors (chunk_id, vector) VALUES (?, ?)",
            zip(ids, (v.astype("<f4").tobytes() for v in w.vectors), strict=True),
        )
        conn.executemany(
            "INSERT INTO chunks_fts (rowid, text) VALUES (?, ?)",
            zip(ids, (space_cjk(c.text) for c in w.chunks), strict=True),
        )

    # -- reporting -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        conn = self.conn
        stored = (FileStatus.INDEXED, FileStatus.SKIPPED, FileStatus.FAILED)
        by_status = dict.fromkeys((s.value for s in stored), 0)
        by_status |= dict(conn.execute("SELECT status, count(*) FROM files GROUP BY status"))
        chunks, tokens = conn.execute(
            "SELECT count(*), coalesce(sum(tokens), 0) FROM chunks"
        ).fetchone()
        (vectors,) = conn.execute("SELECT count(*) FROM vectors").fetchone()
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
        join = "LEFT JOIN vectors v ON v.chunk_id = c.id" if vectors else ""
        blob = ", v.vector" if vectors else ", NULL"
        rows = self.conn.execute(
            f"SELECT {_CHUNK_COLUMNS}{blob} FROM chunks c JOIN files f ON f.id = c.file_id {join}"
            " ORDER BY f.path, c.ordinal"
        )
        for row in rows:
            yield _chunk_row(row), row[11]

    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        wanted = list(ids)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self.conn.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id"
            f" WHERE c.id IN ({marks})",
            wanted,
        )
        return {row[0]: _chunk_row(row) for row in rows}

    # -- searching -----------------------------------------------------------------------

    def text_search(self, match: str, limit: int) -> list[tuple[int, float]]:
        """Chunk ids and BM25 scores (higher is better) for an FTS5 MATCH expression."""
        rows = self.conn.execute(
            "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"
            " ORDER BY bm25(chunks_fts) LIMIT ?",
            (match, limit),
        )
        return [(rowid, -score) for rowid, score in rows]

    def vector_search(
        self, query: np.ndarray[Any, np.dtype[np.float32]], limit: int
    ) -> list[tuple[int, float]]:
        """Chunk ids and cosine similarities, best first; scans vectors in slices."""
        best_ids = np.empty(0, dtype=np.int64)
        best_scores = np.empty(0, dtype=np.float32)
        q = query.astype(np.float32)
        q /= max(float(np.linalg.norm(q)), 1e-12)
        cursor = self.conn.execute("SELECT chunk_id, vector FROM vectors")
        while rows := cursor.fetchmany(_VECTOR_SCAN_ROWS):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
            norms = np.linalg.norm(matrix, axis=1)
            scores = (matrix @ q) / np.maximum(norms, 1e-12)
            best_ids = np.concatenate([best_ids, ids])
            best_scores = np.concatenate([best_scores, scores.astype(np.float32)])
            if len(best_ids) > limit:
                keep = np.argpartition(-best_scores, limit)[:limit]
                best_ids, best_scores = best_ids[keep], best_scores[keep]
        order = np.argsort(-best_scores, kind="stable")
        return [(int(best_ids[i]), float(best_scores[i])) for i in order]


def _write_manifest(conn: sqlite3.Connection, rows: dict[str, str]) -> None:
    conn.executemany(
        "INSERT INTO manifest (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        rows.items(),
    )


def _drop_chunks(conn: sqlite3.Connection, file_id: int) -> None:
    """Delete a file's chunks, their vectors and their full-text rows."""
    old = conn.execute("SELECT id, text FROM chunks WHERE file_id = ?", (file_id,)).fetchall()
    conn.executemany(
        "INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', ?, ?)",
        ((cid, space_cjk(text)) for cid, text in old),
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
