"""Pacing for embedding requests: request and token budgets, pauses, adaptive concurrency.

Servers enforce per-minute budgets over windows much shorter than a minute, so the buckets
refill continuously and hold at most about a second's worth: requests go out evenly, and an
idle spell earns a second's burst, never a minute's. A request may take a bucket below zero
(a batch can cost more tokens than a second's worth); the next one then waits for the debt.
The clock and the sleep are injected, so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

__all__ = ["AdaptiveConcurrency", "RateLimiter", "TokenBucket"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
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

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budgets, and pauses the server asks for."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.requests = TokenBucket(rpm, clock) if rpm else None
        self.tokens = TokenBucket(tpm, clock) if tpm else None
        self.clock = clock
        self.sleep = sleep
        self.paused_until = 0.0
        self._turn = asyncio.Lock()  # first come, first served

    async def acquire(self, tokens: int) -> float:
        """Wait until one request of `tokens` may go; returns the seconds waited."""
        waited = 0.0
        async with self._turn:
            while (delay := self._delay()) > _EPSILON:
                await self.sleep(delay)
                waited += delay
            if self.requests is not None:
                self.requests.take(1)
            if self.tokens is not None:
                self.tokens.take(tokens)
        return waited

    def pause(self, seconds: float) -> None:
        """Hold every request back for `seconds` (a 429's Retry-After, an empty budget)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def _delay(self) -> float:
        waits = [self.paused_until - self.clock()]
        waits += [b.wait() for b in (self.requests, self.tokens) if b is not None]
        return max(waits)


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
        self.in_flight = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < math.floor(self.limit))
            self.in_flight += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def overloaded(self) -> None:
        bearing = self.in_flight - 1  # called inside the refused request's slot
        self.limit = max(1.0, min(float(bearing), self.limit * 0.9))

    def succeeded(self) -> None:
        if self.limit < self.ceiling:
            step = 1.0 / (self.limit * self.PROBE_EVERY)
            self.limit = min(float(self.ceiling), self.limit + step)
            # waiters re-check on the next release
