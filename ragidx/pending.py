"""Files out being embedded: their parts, the chunks each part waits for, and the vectors
that several chunks share.

A small file is one part. A large file is read a segment at a time, one part per segment;
its finished parts are staged in the index in document order, and the file commits when
the last one is staged. Every chunk is known by its embedding key: a key is sent once
while it is out (`Inflight`), and chunks with the same key wait for that one answer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .models import Chunk, Document
from .store import FileWrite

__all__ = ["Inflight", "Part", "PendingFile", "Piece", "rebase"]

Piece = tuple[Chunk, bytes]
"""A chunk and its embedding key."""


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

    def pieces(self, first_ordinal: int) -> list[Piece]:
        """The part's chunks and keys, refitted chunks replaced, numbered from `first_ordinal`."""
        out: list[Piece] = []
        for i, (chunk, key) in enumerate(zip(self.chunks, self.keys, strict=True)):
            for piece, piece_key in self.refitted.get(i, [(chunk, key)]):
                out.append(
                    (dataclasses.replace(piece, ordinal=first_ordinal + len(out)), piece_key)
                )
        return out


class Inflight:
    """Keys out being embedded, with the chunks that wait for each; and keys whose vectors
    came back but are not committed yet (the cache cannot answer for them)."""

    def __init__(self) -> None:
        self.waiting: dict[bytes, list[tuple[Part, int]]] = {}
        self.received: set[bytes] = set()

    def claim(self, key: bytes, part: Part, i: int) -> bool:
        """True when the caller must send this chunk; False when its vector is on its way
        or already here (the chunk then waits, or needs nothing)."""
        if key in self.received:
            return False
        waiters = self.waiting.get(key)
        if waiters is not None:
            waiters.append((part, i))
            part.remaining += 1
            return False
        self.waiting[key] = [(part, i)]
        part.remaining += 1
        return True

    def settle(self, key: bytes, *, received: bool) -> list[tuple[Part, int]]:
        """The chunks waiting for `key`; with `received`, later chunks need not wait."""
        if received:
            self.received.add(key)
        return self.waiting.pop(key, [])

    def committed(self, keys: list[bytes]) -> None:
        self.received.difference_update(keys)


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
            ),
            key,
        )
        for piece, key in pieces
    ]
