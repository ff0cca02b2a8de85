"""What a walk yields, and how it crosses the pipe from a helper process.

A walk yields `WalkItem`s a directory at a time (a listing): a `DirVisited`, then the
directory's files (`FileInfo`), then what it skips (`Skipped`, with the reason in words of
its own: the CLI adds its flags where it shows them). Helper processes send listings as plain
tuples in `marshal` frames, which load faster than any class.
"""

from __future__ import annotations

import itertools
import marshal
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ragidx.models import FileInfo
from ragidx.sizes import format_size

__all__ = [
    "MISSING",
    "TOO_LARGE",
    "TOO_LARGE_DOCUMENT",
    "DirVisited",
    "Skipped",
    "WalkItem",
    "decode_listing",
    "encode_listing",
    "receive",
    "send",
    "too_large",
]

MISSING = "no such file or directory"
TOO_LARGE = "larger than the size limit"
TOO_LARGE_DOCUMENT = "larger than the document size limit"
_FRAME = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class DirVisited:
    """The walker entered a directory under a root; its files follow."""

    path: str
    key: tuple[int, int] | None = None
    """The directory's (st_dev, st_ino): a walk never enters the same directory twice."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file the walker found but will not index, with the reason."""

    path: Path
    reason: str
    size: int = 0
    mtime_ns: int = 0
    error: bool = False
    """True when the file could not be looked at (a failure), not when it was left out."""
    directory: bool = False
    """True when a whole directory could not be read: what is under it is unknown."""
    not_file: bool = False
    """True for an entry found in a directory that is no regular file (a link not followed,
    a FIFO, a device, a symlink loop): reported on every run, never stored in the index."""


WalkItem = FileInfo | Skipped | DirVisited


def too_large(path: Path, st: os.stat_result, cap: int, document: bool = False) -> Skipped:
    """A file over the size cap (`WalkConfig.max_file_size`, or for a `document`
    `max_document_size`), skipped with both sizes."""
    limit = TOO_LARGE_DOCUMENT if document else TOO_LARGE
    reason = f"{limit} ({format_size(st.st_size)} > {format_size(cap)})"
    return Skipped(path, reason, st.st_size, st.st_mtime_ns)


def encode_listing(listing: list[WalkItem]) -> list[tuple[Any, ...]]:
    """A listing as plain tuples, which `marshal` sends: a file as (path, size, mtime_ns), a
    directory as (path, dev, ino, 0), a skipped file as its 7 fields."""
    return [tuple(item) if type(item) is FileInfo else _encode(item) for item in listing]


def _encode(item: WalkItem) -> tuple[Any, ...]:
    if isinstance(item, DirVisited):
        dev, ino = item.key or (-1, -1)
        return (item.path, dev, ino, 0)
    assert isinstance(item, Skipped)
    return (
        str(item.path),
        item.reason,
        item.size,
        item.mtime_ns,
        item.error,
        item.directory,
        item.not_file,
    )


def decode_listing(
    encoded: list[tuple[Any, ...]], seen_dirs: set[tuple[int, int]]
) -> list[WalkItem]:
    """`encode_listing` undone; the directories it holds join `seen_dirs`."""
    if encoded and len(first := encoded[0]) == 4 and set(map(len, encoded[1:])) <= {3}:
        # A directory and its files, the usual listing: decoded by C loops alone.
        seen_dirs.add((first[1], first[2]))
        files = map(tuple.__new__, itertools.repeat(FileInfo), encoded[1:])
        return [DirVisited(first[0], (first[1], first[2])), *files]
    return [_decode(item, seen_dirs) for item in encoded]


def _decode(item: tuple[Any, ...], seen_dirs: set[tuple[int, int]]) -> WalkItem:
    if len(item) == 3:
        return FileInfo(*item)
    if len(item) == 4:
        seen_dirs.add(key := (item[1], item[2]))
        return DirVisited(item[0], key)
    return Skipped(Path(item[0]), *item[1:])


def send(stream: IO[bytes], value: Any) -> None:
    """Write `value` (plain data that `marshal` takes) as one frame, and flush."""
    data = marshal.dumps(value)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """The next frame's value, or None at the end of the stream (or of a cut-off frame)."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return marshal.loads(data)
