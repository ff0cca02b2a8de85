"""A FIFO queue bounded by the summed weight of its items, not their number.

The store's queue carries items as different as a removed file (nothing) and a large file's
staged part (a megabyte of chunks): a count bound lets memory swing by a hundred times.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

__all__ = ["WeightedQueue"]

T = TypeVar("T")


class WeightedQueue(Generic[T]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.weight = 0
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self._changed = asyncio.Condition()

    async def put(self, item: T, weight: int = 1) -> None:
        """Wait until the item fits; an item heavier than the limit goes into an empty queue."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: not self._items or self.weight + weight <= self.limit
            )
            self._items.append((item, weight))
            self.weight += weight
            self._changed.notify_all()

    async def get_many(self, most: int, weight: int) -> list[T]:
        """At least one item, then more while they are there, up to `most` items or about
        `weight`."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            out: list[T] = []
            taken = 0
            while self._items and len(out) < most and (not out or taken < weight):
                item, w = self._items.popleft()
                out.append(item)
                taken += w
            self.weight -= taken
            self._changed.notify_all()
            return out
