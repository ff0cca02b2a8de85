"""The embedding cache as the run sees it: each chunk's key, and which keys the index
already holds a vector for, looked up from worker threads beside the writer.

The key is `store.embedding_key` (the vector space and the text); the lookups run on a
connection of their own (`Shared`), since the writer's is busy committing in another
thread. Keys out being embedded in this run, and the chunks that wait for them, are
`Inflight`'s: a key is sent once while it is out.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ragidx.embed import Embedder
from ragidx.pipeline.pending import Part
from ragidx.store import Store, embedding_key

__all__ = ["CacheView", "Inflight", "Shared"]

T = TypeVar("T")


class Shared:
    """A connection worker threads take turns at; closed only between turns, since closing
    one that a thread is using can crash the interpreter."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._closed = False

    def use(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the caller's thread, once no other thread is at the connection;
        `CancelledError` once it is closed (the run is over; the result is moot)."""
        with self._lock:
            if self._closed:
                raise asyncio.CancelledError
            return fn(*args)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.store.close()


class CacheView:
    """Keys of texts in the run's vector space, and which of them the cache holds.

    `writer` is the run's own store: while its reset waits (`SqliteStore.reset`), the old
    cache goes with the reset and answers nothing of this run."""

    def __init__(self, embedder: Embedder, writer: Store, reads: Shared) -> None:
        self.space = (embedder.provider, embedder.model, embedder.dims)
        """What a key is made of besides the text (the worker processes make keys too)."""
        self.key: Callable[[str], bytes] = functools.partial(embedding_key, *self.space)
        self._writer = writer
        self._reads = reads

    def cached(self, keys: list[bytes]) -> set[bytes]:
        """Which of `keys` have a vector in the cache; runs in a worker thread."""
        if self._writer.resetting:
            return set()
        return self._reads.use(self._reads.store.cached, keys)


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
