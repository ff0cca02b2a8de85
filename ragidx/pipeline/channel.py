"""A bounded, closable, typed channel between two stages, in the spirit of anyio's memory
object streams.

`channel[T](capacity)` gives a `Sender[T]` and a `Receiver[T]` that share one buffer. Each
producer task takes its own `Sender.clone()` and closes it when it is done; once the last
sender is closed and the buffer is drained, the receiver's `receive` raises `EndOfStream`
and `async for` ends. No marker object travels in the buffer, so the item type stays
exact, and no stage counts its producers by hand.

The bound is on the summed weight of the buffered items (each weighs 1 unless the channel
is given a `weigh` function): the store's channel carries items as different as a removed
file (nothing) and a large file's part (a megabyte of chunks), where a count would let
memory swing a hundred times. An item heavier than the whole capacity still goes into an
empty buffer, so nothing waits forever.

Closing the last receiver breaks the channel: a sender waiting for room, or sending later,
gets `BrokenChannel`. Using a closed end raises `ClosedEnd`. Cancellation of a waiting
`send` or `receive` loses no item and wakes no one in vain.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["BrokenChannel", "ClosedEnd", "EndOfStream", "Receiver", "Sender", "channel"]

T = TypeVar("T")


class EndOfStream(Exception):
    """Every sender is closed and the buffer is empty: nothing more will come."""


class BrokenChannel(Exception):
    """Every receiver is closed: what is sent would never be read."""


class ClosedEnd(Exception):
    """This end was closed; it cannot be used again."""


def _one(item: object) -> int:
    return 1


@dataclass(eq=False, slots=True)
class _State(Generic[T]):
    capacity: int
    weigh: Callable[[T], int]
    buffer: collections.deque[tuple[T, int]] = field(default_factory=collections.deque)
    weight: int = 0
    senders: int = 0
    receivers: int = 0
    # Futures of tasks waiting for an item (woken one at a time) or for room (all woken:
    # which of them fits depends on their items' weights).
    getters: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)
    putters: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)

    def fits(self, weight: int) -> bool:
        return not self.buffer or self.weight + weight <= self.capacity

    def wake_getter(self) -> None:
        while self.getters:
            getter = self.getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def wake_all(self, waiters: collections.deque[asyncio.Future[None]]) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


async def _wait(waiters: collections.deque[asyncio.Future[None]]) -> None:
    waiter = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    finally:
        waiter.cancel()  # a no-op once it is done
        if waiter in waiters:
            waiters.remove(waiter)


class Sender(Generic[T]):
    """The sending end. `send` waits for room; close each clone once its task is done."""

    def __init__(self, state: _State[T]) -> None:
        self._state = state
        self._closed = False
        state.senders += 1

    def clone(self) -> Sender[T]:
        """Another sending end of the same channel, for another producer."""
        if self._closed:
            raise ClosedEnd("clone of a closed sender")
        return Sender(self._state)

    async def send(self, item: T) -> None:
        """Put `item` in the buffer once its weight fits (at once into an empty buffer)."""
        state = self._state
        weight = state.weigh(item)
        while True:
            if self._closed:
                raise ClosedEnd("send on a closed sender")
            if not state.receivers:
                raise BrokenChannel("every receiver is closed")
            if state.fits(weight):
                break
            await _wait(state.putters)
        state.buffer.append((item, weight))
        state.weight += weight
        state.wake_getter()

    def close(self) -> None:
        """This producer is done; the last one to close ends the stream. Idempotent."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        state.senders -= 1
        if not state.senders:
            state.wake_all(state.getters)  # each sees the end once the buffer is empty

    def __enter__(self) -> Sender[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Receiver(Generic[T]):
    """The receiving end: `receive`, `async for`, or `receive_many` for groups."""

    def __init__(self, state: _State[T]) -> None:
        self._state = state
        self._closed = False
        state.receivers += 1

    def clone(self) -> Receiver[T]:
        """Another receiving end, for another consumer of the same items."""
        if self._closed:
            raise ClosedEnd("clone of a closed receiver")
        return Receiver(self._state)

    async def receive(self) -> T:
        """The next item, waiting for one; `EndOfStream` once every sender is closed and
        nothing is left."""
        await self._ready()
        return self._take()[0]

    def receive_nowait(self) -> T:
        """The next item if one is buffered; `asyncio.QueueEmpty` if none is yet,
        `EndOfStream` if none will be."""
        self._check()
        if not self._state.buffer:
            if not self._state.senders:
                raise EndOfStream
            raise asyncio.QueueEmpty
        return self._take()[0]

    def peek_nowait(self) -> T | None:
        """The item `receive_nowait` would return, left in place; None if none is buffered."""
        self._check()
        return self._state.buffer[0][0] if self._state.buffer else None

    async def receive_many(self, most: int, weight: int) -> list[T]:
        """At least one item, waiting for it; then more while they are buffered, up to
        `most` items or about `weight`. `EndOfStream` as `receive`."""
        await self._ready()
        out: list[T] = []
        taken = 0
        while self._state.buffer and len(out) < most and (not out or taken < weight):
            item, w = self._take()
            out.append(item)
            taken += w
        return out

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        while True:
            try:
                item = await self.receive()
            except EndOfStream:
                return
            yield item

    def close(self) -> None:
        """This consumer is done; once the last one closes, senders get `BrokenChannel`.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        state = self._state
        state.receivers -= 1
        if not state.receivers:
            state.buffer.clear()
            state.weight = 0
            state.wake_all(state.putters)

    def __enter__(self) -> Receiver[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check(self) -> None:
        if self._closed:
            raise ClosedEnd("receive on a closed receiver")

    async def _ready(self) -> None:
        """Wait until an item is buffered; `EndOfStream` if none ever will be."""
        state = self._state
        while True:
            self._check()
            if state.buffer:
                return
            if not state.senders:
                raise EndOfStream
            try:
                await _wait(state.getters)
            except asyncio.CancelledError:
                # Woken for an item it will not take now: the next getter takes it.
                if state.buffer:
                    state.wake_getter()
                raise

    def _take(self) -> tuple[T, int]:
        state = self._state
        item, weight = state.buffer.popleft()
        state.weight -= weight
        state.wake_all(state.putters)
        if state.buffer:
            state.wake_getter()  # another item for another waiting getter
        return item, weight


class channel(tuple[Sender[T], Receiver[T]]):  # lower case: a function to its callers, as anyio's
    """`send, receive = channel[Item](capacity)`: the two ends of a new channel.

    `capacity` bounds the summed weight of buffered items; `weigh` gives an item's weight
    (1 for every item by default).
    """

    def __new__(  # type: ignore[misc]
        cls, capacity: int, weigh: Callable[[T], int] = _one
    ) -> tuple[Sender[T], Receiver[T]]:
        if capacity < 1:
            raise ValueError("a channel holds at least one item")
        state = _State(capacity, weigh)
        return Sender(state), Receiver(state)
