"""Files out being embedded: their parts, the chunks each part waits for, and the vectors
that several chunks share.

A small file is one part. A large file is read a segment at a time, one part per segment;
its finished parts are staged in the index in document order, and the file commits when
the last one is staged. Every chunk is known by its embedding key: a key is sent once
while it is out (`Inflight`), and chunks with the same key wait for that one answer.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from dataclasses import dataclass, field

from ragidx.models import Chunk, Document
from ragidx.store import FileWrite

__all__ = ["Inflight", "Part", "PendingFile", "Piece", "Ref", "rebase"]

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


class Inflight:
    """Keys out being embedded, with the chunks that wait for each; and keys whose vectors
    came back but may not be visible to a cache lookup yet.

    A reader looks the cache up in a worker thread, then claims on the loop. A vector
    committed in between is in neither answer, so commits are numbered (`generation`) and
    a claim made after a lookup that began at generation `g` counts every key committed
    since `g` as there. Those keys are forgotten once no lookup that old is open."""

    def __init__(self) -> None:
        self.waiting: dict[bytes, list[tuple[Part, int]]] = {}
        self.received: set[bytes] = set()
        self.generation = 0
        self._lookups: collections.Counter[int] = collections.Counter()
        self._recent: dict[bytes, int] = {}
        self._log: collections.deque[tuple[int, list[bytes]]] = collections.deque()

    def lookup_begins(self) -> int:
        self._lookups[self.generation] += 1
        return self.generation

    def lookup_ends(self, generation: int) -> None:
        self._lookups[generation] -= 1
        if not self._lookups[generation]:
            del self._lookups[generation]
        oldest = min(self._lookups, default=self.generation)
        while self._log and self._log[0][0] <= oldest:
            for key in self._log.popleft()[1]:
                if self._recent.get(key, 0) <= oldest:
                    self._recent.pop(key, None)

    def claim(self, key: bytes, part: Part, i: int, since: int) -> str:
        """`send` when the caller must send this chunk; `have` when its vector is here;
        `wait` when it is on its way (the chunk then waits for it)."""
        if key in self.received or self._recent.get(key, -1) > since:
            return "have"
        part.remaining += 1
        waiters = self.waiting.get(key)
        if waiters is not None:
            waiters.append((part, i))
            return "wait"
        self.waiting[key] = [(part, i)]
        return "send"

    def settle(self, key: bytes, *, received: bool) -> list[tuple[Part, int]]:
        """The chunks waiting for `key`, the sender's first; with `received`, its vector is
        here and later chunks need not wait."""
        if received:
            self.received.add(key)
        return self.waiting.pop(key, [])

    def committed(self, keys: list[bytes]) -> None:
        self.generation += 1
        self.received.difference_update(keys)
        if self._lookups:
            for key in keys:
                self._recent[key] = self.generation
            self._log.append((self.generation, keys))


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
