"""Files out being embedded: their parts, the chunks each part waits for, and the vectors
that several chunks share.

A small file is one part. A large file is read a segment at a time, one part per segment;
its finished parts are staged in the index in document order, and the file commits when
the last one is staged. Every chunk is known by its embedding key: a key is sent once
while it is out (`Inflight`), and chunks with the same key wait for that one answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

from ragidx.models import Chunk, Document
from ragidx.store import FileWrite

__all__ = ["Part", "PendingFile", "Piece", "Ref", "rebase"]

Piece = tuple[Chunk, bytes]
"""A chunk and its embedding key."""

Ref = tuple["Part", int]
"""A chunk to embed: its part and its place in it."""


@dataclass(eq=False, slots=True)
class PendingFile:
    path: str
    doc: Document | None = None
    """Metadata; a large file's comes once its last segment is read."""
    stage: int | None = None
    """Set for a large file, whose parts are staged in the index as they finish."""
    reading: bool = False
    """A large file's reader has segments still to come."""
    open_parts: int = 0
    """Parts read and not yet staged (or, for a small file, not yet finished)."""
    failure: str | None = None
    """Why an embedding failed; the file fails."""
    verdict: FileWrite | None = None
    """What the reader decided midway through a large file (skipped, failed)."""
    next_seq: int = 0
    done_parts: dict[int, Part] = field(default_factory=dict)
    """Finished parts that wait for an earlier one before they can be staged."""
    chunks: int = 0
    tokens: int = 0
    refitted: int = 0
    finished: bool = False
    """Its last write is queued."""
    room: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever a part is staged: the reader waits on it with too many parts open."""

    @property
    def complete(self) -> bool:
        return not self.reading and self.open_parts == 0


@dataclass(eq=False, slots=True)
class Part:
    file: PendingFile
    seq: int
    chunks: list[Chunk]
    keys: list[bytes]
    remaining: int = 0
    refitted: dict[int, list[Piece]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Chunks the part will store, refitted chunks counted as their pieces."""
        return len(self.chunks) + sum(len(p) - 1 for p in self.refitted.values())

    def pieces(self, first_ordinal: int) -> list[Piece]:
        """The part's chunks and keys, refitted chunks replaced, numbered from `first_ordinal`."""
        out: list[Piece] = []
        for i, (chunk, key) in enumerate(zip(self.chunks, self.keys, strict=True)):
            for piece, piece_key in self.refitted.get(i, [(chunk, key)]):
                out.append(
                    (dataclasses.replace(piece, ordinal=first_ordinal + len(out)), piece_key)
                )
        return out


def rebase(pieces: list[Piece], origin: Chunk, chunk: Chunk) -> list[Piece]:
    """Pieces refitted from `origin`, moved to stand for `chunk`, which has the same input
    in another place (or another file)."""
    if origin is chunk:
        return pieces
    chars = chunk.char_start - origin.char_start
    lines = chunk.line_start - origin.line_start
    return [
        (
            dataclasses.replace(
                piece,
                char_start=piece.char_start + chars,
                char_end=piece.char_end + chars,
                line_start=piece.line_start + lines,
                line_end=piece.line_end + lines,
                heading_path=chunk.heading_path,
                page_start=chunk.page_start,
                page_end=chunk.page_end,
            ),
            key,
        )
        for piece, key in pieces
    ]
