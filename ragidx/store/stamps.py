"""What a re-run compares with the tree to tell what changed: a file's stamp, and a directory's.

A `Stamp` is a file's size, mtime and status as indexed. A `DirStamp` stands for all of a
directory's stamps at once: the digest of its files' paths, sizes and mtimes, in name order,
with what a re-run needs to report them unchanged. A directory whose walk has that digest is
unchanged as a whole, and is planned without a row read or a comparison per file.

The index keeps a directory's stamp only while it is true: triggers on `files` delete it as
soon as any of the directory's rows is inserted, changed or deleted, so no code path can
leave it stale, and list the directory in `unstamped`. After a run, `stamp_dirs` stamps
those directories again: its work follows what changed, not the size of the index.
(A change to how the digest is made needs a migration that empties `dir_stamps` and lists
every directory in `unstamped`: no old stamp would match.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import struct
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ragidx.models import FileStatus

__all__ = [
    "STAMP_COLUMNS",
    "DirStamp",
    "Stamp",
    "dir_stamp",
    "dir_stamp_row",
    "listing_digest",
    "read_dir_stamp",
    "read_stamp",
    "read_stamps_in_dir",
    "stamp_dirs",
]

INDEXED, SKIPPED = FileStatus.INDEXED.value, FileStatus.SKIPPED.value


class Stamp(NamedTuple):
    """What a re-run compares with a file's `stat` to tell whether it changed: one per file of
    a tree, read from an index that holds exactly these columns."""

    path: str
    size: int
    mtime_ns: int
    status: str
    chunking: str | None
    chunks: int
    reason: str | None


STAMP_COLUMNS = "path, size, mtime_ns, status, chunking, chunks, reason"
"""`Stamp`'s fields, as `files`' columns (which the index `files_dir_stamp` covers)."""


class DirStamp(NamedTuple):
    """A directory whose files are all indexed or skipped, chunked one way."""

    chunking: str
    digest: bytes
    chunks: list[int]
    """Each file's chunk count, in name order."""
    notes: list[tuple[int, str, str | None]]
    """(position, status, reason) of each file that is skipped, or indexed with a reason."""


def listing_digest(files: Sequence[tuple[str, int, int]]) -> bytes:
    """The digest of (path, size, mtime_ns) triples, in order: a walk's files, or the rows
    that the index holds for them. (C loops only: it runs over every file of a re-run.)"""
    digest = hashlib.sha256()
    if files:
        paths, sizes, mtimes = zip(*files, strict=True)
        # NUL never occurs in a path; a name that is not UTF-8 never matches a stored one.
        digest.update("\0".join(paths).encode("utf-8", "surrogatepass"))
        digest.update(_int64s([*sizes, *mtimes]))
    return digest.digest()[:16]


def dir_stamp_row(rows: list[Stamp]) -> tuple[str | None, bytes | None, bytes, str | None]:
    """A directory's stamp as stored (chunking, digest, chunks, notes), from its files' rows
    in path order. Without a digest where the directory cannot be planned as one: a file that
    failed, or files chunked in different ways, are looked at one by one."""
    chunking = rows[0].chunking if rows else None
    usable = chunking is not None and all(
        r.chunking == chunking and r.status in (INDEXED, SKIPPED) for r in rows
    )
    if not usable:
        return None, None, b"", None
    notes = [(i, r.status, r.reason) for i, r in enumerate(rows) if r.status != INDEXED or r.reason]
    chunks = _int64s([r.chunks for r in rows])
    return (
        chunking,
        listing_digest([(r.path, r.size, r.mtime_ns) for r in rows]),
        chunks,
        json.dumps(notes) if notes else None,
    )


def dir_stamp(row: tuple[str | None, bytes | None, bytes, str | None]) -> DirStamp | None:
    """A stored stamp back, or None where the directory must be looked at file by file."""
    chunking, digest, chunks, notes = row
    if chunking is None or digest is None:
        return None
    counts = list(struct.unpack(f"<{len(chunks) // 8}q", chunks))
    listed = [(i, status, reason) for i, status, reason in json.loads(notes)] if notes else []
    return DirStamp(chunking, digest, counts, listed)


def _int64s(values: Sequence[int]) -> bytes:
    """Little-endian 64-bit integers: the same bytes for the same index on any machine."""
    return struct.pack(f"<{len(values)}q", *values)


def read_stamp(conn: sqlite3.Connection, path: str) -> Stamp | None:
    row = conn.execute(f"SELECT {STAMP_COLUMNS} FROM files WHERE path = ?", (path,)).fetchone()
    return Stamp(*row) if row else None


def read_stamps_in_dir(conn: sqlite3.Connection, directory: str) -> dict[str, Stamp]:
    """The stamps of the files directly in `directory`, by path."""
    rows = conn.execute(f"SELECT {STAMP_COLUMNS} FROM files WHERE dir = ?", (directory,))
    new = tuple.__new__  # `_make` without its Python frame: a row for every file of a tree
    return {row[0]: new(Stamp, row) for row in rows}


def read_dir_stamp(conn: sqlite3.Connection, directory: str) -> DirStamp | None:
    """The directory's stamp, where it has a usable one."""
    row = conn.execute(
        "SELECT chunking, digest, chunks, notes FROM dir_stamps WHERE dir = ?", (directory,)
    ).fetchone()
    return dir_stamp(row) if row else None


def stamp_dirs(
    transaction: Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]],
    rows_per_commit: int = 20_000,
) -> int:
    """Write a stamp for each directory whose rows changed since it had one (the triggers
    list them in `unstamped`), in transactions of about `rows_per_commit` files; returns
    how many. A re-run of an unchanged tree then reads a row per directory, not per file."""
    written = 0
    while True:
        with transaction() as conn:
            batch = [d for (d,) in conn.execute("SELECT dir FROM unstamped LIMIT 1000")]
            if not batch:
                return written
            rows = 0
            for directory in batch:
                if directory:  # '': staging rows, which no walk plans
                    rows += _stamp_dir(conn, directory)
                conn.execute("DELETE FROM unstamped WHERE dir = ?", (directory,))
                written += 1
                if rows >= rows_per_commit:
                    break


def _stamp_dir(conn: sqlite3.Connection, directory: str) -> int:
    stamps = [
        Stamp(*row)
        for row in conn.execute(
            f"SELECT {STAMP_COLUMNS} FROM files WHERE dir = ? ORDER BY path", (directory,)
        )
    ]
    if stamps:  # else the directory's files are all gone from the index
        conn.execute(
            "INSERT OR REPLACE INTO dir_stamps (dir, chunking, digest, chunks, notes)"
            " VALUES (?, ?, ?, ?, ?)",
            (directory, *dir_stamp_row(stamps)),
        )
    return len(stamps)
