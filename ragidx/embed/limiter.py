"""Pacing for embedding requests: request and token budgets, pauses, adaptive concurrency.

Servers enforce per-minute budgets over windows much shorter than a minute, so the buckets
refill continuously and hold at most about a second's worth: requests go out evenly, and an
idle spell earns a second's burst, never a minute's. A request may take a bucket below zero
(a batch can cost more tokens than a second's worth); the next one then waits for the debt.

A server that reports its budgets (`x-ratelimit-*`) is paced by them too, with no setting:
`ServerBudget` turns each answer's reading into the rate the server refills at and, when too
little is left for the requests to come, into a hold just long enough for it to come back.
There is one bucket per unit, at the lower of the rate given (`--rpm`, `--tpm`) and the
server's, so the two never add up their waits.
The clock and the sleep are injected, so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import takewhile
from types import TracebackType
from typing import Generic, Literal, TypeVar

__all__ = [
    "AdaptiveConcurrency",
    "RateLimiter",
    "Reading",
    "ServerBudget",
    "Slots",
    "TokenBucket",
]

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Unit = Literal["requests", "tokens"]
BURST_SECONDS = 1.0
_EPSILON = 1e-6  # seconds


class TokenBucket:
    """`per_minute` units a minute, refilled continuously, holding one second's worth."""

    def __init__(self, per_minute: float, clock: Clock) -> None:
        if per_minute <= 0:
            raise ValueError(f"a budget must be positive, got {per_minute}")
        self.rate = per_minute / 60.0
        self.capacity = self.rate * BURST_SECONDS
        self.level = 0.0  # no burst at the start
        self.clock = clock
        self.stamp = clock()

    def wait(self) -> float:
        """Seconds until the bucket is out of debt (0 when a request may go now)."""
        self._refill()
        # Within a rounding error of paid off is paid off: a float residue must not spin.
        return 0.0 if self.level >= -_EPSILON * self.rate else -self.level / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount

    def hold(self, until: float) -> None:
        """Owe what is refilled before `until`: nothing goes before it, then evenly again."""
        self._refill()
        self.level = min(self.level, (self.stamp - until) * self.rate)

    def retune(self, per_second: float) -> None:
        """Refill at `per_second` from now on, holding a second's worth of it."""
        self._refill()
        self.rate = per_second
        self.capacity = per_second * BURST_SECONDS
        self.level = min(self.level, self.capacity)

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now


@dataclass(frozen=True, slots=True)
class Reading:
    """One of the server's budgets as an answer's `x-ratelimit-*` headers give it."""

    remaining: float
    reset: float
    """Seconds until the budget is whole again."""
    limit: float | None = None


class ServerBudget:
    """What the answers have shown of one budget the server keeps (requests or tokens).

    Its reset is the time until the budget is whole again (OpenAI's meaning). Within one reset
    the server then gives at most its capacity, what is left now and what comes back, whether
    it refills continuously or, as a sliding window does, gives each unit back a window after
    it took it: capacity / reset is the `rate` to pace at. A continuous refill is
    (capacity - remaining) / reset, so the units that the requests ahead need and that are not
    left are back `short / refill` after the reading, and never later than the reset.

    The capacity is not always the limit header (ragidx's test server gives a minute's limit
    over a bucket that holds a second's worth, and a reset until that bucket is full), so it is
    learned: the most ever left plus what that request took, never above the limit. One thought
    too small costs little where the budget refills continuously (the reset grows with what is
    missing, so the pace settles at the refill with something left over); one thought too
    large paces too fast.
    """

    # A unit comes back a window after the server took it, later than we sent it by however
    # long the request took to arrive and queue: a little under its rate keeps clear of that.
    SLACK = 0.98

    def __init__(self) -> None:
        self.capacity = 0.0
        self.rate: float | None = None

    def observe(self, reading: Reading, spent: float, ahead: float) -> float:
        """Learn from a reading taken as a request of `spent` units went through; returns the
        seconds from then until `ahead` units are left (0 when they are)."""
        self.capacity = max(self.capacity, reading.remaining + spent)
        if reading.limit:
            self.capacity = min(self.capacity, reading.limit)
        if reading.reset <= 0:
            return 0.0
        if self.capacity > 0:
            self.rate = self.capacity / reading.reset * self.SLACK
        short = ahead - reading.remaining
        if short <= 0:
            return 0.0
        refill = (self.capacity - reading.remaining) / reading.reset * self.SLACK
        return reading.reset if refill <= 0 else min(reading.reset, short / refill)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budgets, the server's, and pauses it asks for."""

    GRANTS_KEPT = 4096  # far more than are ever in flight

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.given: dict[Unit, float | None] = {"requests": rpm, "tokens": tpm}
        self.buckets: dict[Unit, TokenBucket] = {
            unit: TokenBucket(per_minute, clock)
            for unit, per_minute in self.given.items()
            if per_minute
        }
        self.server: dict[Unit, ServerBudget] = {
            "requests": ServerBudget(),
            "tokens": ServerBudget(),
        }
        self.clock = clock
        self.sleep = sleep
        self.paused_until = 0.0
        self._granted: deque[tuple[float, int]] = deque(maxlen=self.GRANTS_KEPT)  # (when, tokens)
        self._turn = asyncio.Lock()  # first come, first served

    @property
    def requests(self) -> TokenBucket | None:
        return self.buckets.get("requests")

    @property
    def tokens(self) -> TokenBucket | None:
        """The token bucket, from `tpm` or from the server's headers: None while neither."""
        return self.buckets.get("tokens")

    async def acquire(self, tokens: int) -> float:
        """Wait until one request of `tokens` may go; returns the seconds waited."""
        waited = 0.0
        async with self._turn:
            while (delay := self._delay()) > _EPSILON:
                await self.sleep(delay)
                waited += delay
            for unit, bucket in self.buckets.items():
                bucket.take(1 if unit == "requests" else tokens)
            self._granted.append((self.clock(), tokens))
        return waited

    def pause(self, seconds: float) -> None:
        """Hold every request back for `seconds` (a 429's Retry-After)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)
        # Nothing banked meanwhile: a burst when it ends, which a server that meters by sliding
        # windows would give back as a burst a window later, would be refused again.
        for bucket in self.buckets.values():
            bucket.hold(self.paused_until)

    def heed(self, unit: Unit, reading: Reading, *, spent: float, need: float, at: float) -> None:
        """Pace by a budget the server read at `at`, as it took a request of `spent` units, and
        hold back until the requests granted since then, and a next one of `need`, fit."""
        since = [tokens for _, tokens in takewhile(lambda g: g[0] > at, reversed(self._granted))]
        ahead = need + (len(since) if unit == "requests" else sum(since))
        server = self.server[unit]
        wait = server.observe(reading, spent, ahead)
        bucket = self.buckets.get(unit)
        if server.rate is not None:
            given = self.given[unit]
            rate = min(server.rate, given / 60) if given else server.rate
            if bucket is None:
                bucket = self.buckets[unit] = TokenBucket(rate * 60, self.clock)
            else:
                bucket.retune(rate)
        if wait <= 0:
            return
        if bucket is not None:
            bucket.hold(at + wait)
        else:  # nothing yet tells the rate: hold everything
            self.paused_until = max(self.paused_until, at + wait)

    def _delay(self) -> float:
        waits = [self.paused_until - self.clock()]
        waits += [b.wait() for b in self.buckets.values()]
        return max(waits)


class Slots(Generic[T]):
    """Requests in flight under a limit that may change, served first come, first served.

    A slot that frees goes to the request that waited longest, with what `grant` returns,
    never to whoever asks next: a worker takes its next batch without an await in between,
    so with a `Condition` it passed a waiting request at every release, and that request
    (with the files in its batch) waited from the start of a run to its end.
    """

    def __init__(self, limit: Callable[[], int], grant: Callable[[], T]) -> None:
        self.in_flight = 0
        self._limit = limit
        self._grant = grant
        self._waiters: deque[asyncio.Future[T]] = deque()

    async def acquire(self) -> T:
        """A slot, waiting in line for one; `release` it after."""
        if not self._waiters and self.in_flight < self._limit():
            return self._take()
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot it will not use: the next in line takes it
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self.hand_over()

    def hand_over(self) -> None:
        """Slots free under the limit (after a release, or the limit rose) go to the waiting
        requests, in the order they came."""
        while self._waiters and self.in_flight < self._limit():
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(self._take())

    def _take(self) -> T:
        self.in_flight += 1
        return self._grant()


class AdaptiveConcurrency:
    """Requests in flight, at most `limit`, between 1 and the `ceiling`.

    On overload the limit drops to the requests the server was bearing (those in flight but
    the refused one), and at least by a tenth; it grows back by one per `PROBE_EVERY` times
    `limit` successes, so a server at capacity is probed now and then, not hammered.
    """

    PROBE_EVERY = 4

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self._slots: Slots[None] = Slots(lambda: math.floor(self.limit), lambda: None)

    @property
    def in_flight(self) -> int:
        return self._slots.in_flight

    async def __aenter__(self) -> None:
        await self._slots.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._slots.release()

    def overloaded(self) -> None:
        bearing = self.in_flight - 1  # called inside the refused request's slot
        self.limit = max(1.0, min(float(bearing), self.limit * 0.9))

    def succeeded(self) -> None:
        if self.limit < self.ceiling:
            step = 1.0 / (self.limit * self.PROBE_EVERY)
            self.limit = min(float(self.ceiling), self.limit + step)
            self._slots.hand_over()
