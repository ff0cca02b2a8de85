"""The embedding cache as the run sees it: each chunk's key, and which keys the index
already holds a vector for, looked up from worker threads beside the writer.

The key is `store.embedding_key` (the vector space and the text); the lookups run on a
connection of their own (`Shared`), since the writer's is busy committing in another
thread. Keys out being embedded in this run are `pending.Inflight`'s.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ragidx.embed import Embedder
from ragidx.store import Store, embedding_key

__all__ = ["CacheView", "Shared"]

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
        self.key: Callable[[str], bytes] = functools.partial(
            embedding_key, embedder.provider, embedder.model, embedder.dims
        )
        self._writer = writer
        self._reads = reads

    def cached(self, keys: list[bytes]) -> set[bytes]:
        """Which of `keys` have a vector in the cache; runs in a worker thread."""
        if self._writer.resetting:
            return set()
        return self._reads.use(self._reads.store.cached, keys)
