"""What a re-run compares with the tree to tell what changed: a file's stamp, and a directory's.

A `Stamp` is a file's size, mtime and status as indexed. A `DirStamp` stands for all of a
directory's stamps at once: the digest of its files' paths, sizes and mtimes, in name order,
with what a re-run needs to report them unchanged. A directory whose walk has that digest is
unchanged as a whole, and is planned without a row read or a comparison per file.

The index keeps a directory's stamp only while it is true: triggers on `files` delete it as
soon as any of the directory's rows is inserted, changed or deleted, so no code path can
leave it stale, and list the directory in `unstamped`. After a run, `SqliteStore.stamp_dirs`
stamps those directories again: its work follows what changed, not the size of the index.
(A change to how the digest is made needs a migration that empties `dir_stamps` and lists
every directory in `unstamped`: no old stamp would match.)
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from typing import NamedTuple

from ragidx.models import FileStatus

__all__ = ["DirStamp", "Stamp", "dir_stamp", "dir_stamp_row", "listing_digest"]

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
