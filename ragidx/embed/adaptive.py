"""Batch size and requests in flight, adapted to the latency the server shows.

A server that computes one request at a time (a model on a CPU) answers a request only after
those ahead of it, and computes a request whose client gave up all the same: a batch that
takes longer than the timeout is work thrown away, and so is every request queued behind it.
So a timeout is a signal, like a 429, and so is an answer that comes near it. Each answer
steers the next batches (in estimated tokens):

* well inside the timeout (under a quarter of it), the batch grows: to what would take a
  quarter of the timeout at the latency just seen, at most four times the batch that showed
  it, so a fast server reaches the provider's limits in a few round trips;
* past a quarter, the server is saturated, and requests in flight beyond two only queue
  there (a server that computes one at a time gains nothing from them): concurrency steps
  down, to two;
* past half of the timeout, the batch shrinks to what would take a quarter, and concurrency
  steps down, to one;
* a timeout shrinks the batch to a quarter of the one that timed out and leaves one request
  in flight; the caller splits the batch that timed out and sends it again in pieces.

Once the batch has shrunk, a batch made before (it waited its turn) that is over twice the
new size is held back unsent (`holds_back`), for the caller to split: it would only come near
the timeout, or pass it, and cost the server its turn all the same.

Concurrency starts at two and grows, a request at a time, while answers to batches near the
current size (or full by their count of inputs, which no batch passes) come within an eighth
of the timeout. An answer speaks for the batch it carried,
never for the current size, so the answers to batches sent before a change do not compound
it; concurrency changes at most once a round (only answers to requests sent after the last
change move it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ragidx.embed.limiter import Slots

__all__ = ["Adaptive", "Turn"]

Clock = Callable[[], float]

START_TOKENS = 2048
"""The first batches (a few chunks): a slow server answers them well inside any timeout."""
START_REQUESTS = 2
"""In flight at first: one computed, one waiting, which is all a server that computes one
request at a time can use; a quicker one earns more a round trip at a time."""
TARGET_SHARE = 0.25
NEAR_SHARE = 0.5
FAST_SHARE = 0.125
GROWTH = 4
"""The most a batch grows on one answer: a quick server gets the provider's largest batches
in a few round trips, and one answer in a sixteenth of the timeout can at most lead to
batches that take a quarter of it."""


@dataclass(slots=True)
class Turn:
    """One request's place: when it was sent, and how many had been sent before it."""

    seq: int
    sent_at: float = 0.0


class Adaptive:
    """Tokens per batch (`budget`, at most the run's cap) and requests in flight (`limit`,
    between 1 and `ceiling`), from the latency of each answer against `timeout`."""

    def __init__(
        self, *, timeout: float, ceiling: int, cap: int, clock: Clock = time.monotonic
    ) -> None:
        self.timeout = timeout
        self.ceiling = ceiling
        self.clock = clock
        self.cap = cap
        self.budget = min(START_TOKENS, cap)
        self.limit = min(START_REQUESTS, ceiling)
        self.slowed = False  # the budget has been cut to the latency the server shows
        self._sent = 0
        self._changed_at = 0  # requests sent when concurrency last changed
        self._slots: Slots[Turn] = Slots(lambda: self.limit, self._next_turn)

    def bound(self, cap: int, *, fixed: bool = False) -> None:
        """A run starts: its largest batch in tokens; `fixed` starts there (the size was
        given) rather than small. Either way, slow answers shrink it and quick ones grow it
        back."""
        self.cap = max(cap, 1)
        self.budget = self.cap if fixed else min(START_TOKENS, self.cap)
        self.limit = min(START_REQUESTS, self.ceiling)
        self.slowed = False

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Turn]:
        """A request's slot among those in flight; `Turn.sent_at` is set by `start`.

        First come, first served: a slot that frees is handed to the request that waited
        longest, never left for whoever asks next (a worker takes its next batch without an
        await in between, and would pass a waiting request every time, to the end of a run).
        """
        turn = await self._slots.acquire()
        try:
            yield turn
        finally:
            self._slots.release()

    @property
    def in_flight(self) -> int:
        return self._slots.in_flight

    def _next_turn(self) -> Turn:
        self._sent += 1
        return Turn(self._sent)

    def holds_back(self, tokens: int) -> bool:
        """Whether a batch of `tokens` would come near the timeout, as the server's answers
        so far say: made before they said so, it waited its turn (the caller splits it)."""
        return self.slowed and tokens > self.budget / TARGET_SHARE * NEAR_SHARE

    def start(self, turn: Turn) -> None:
        """The request goes now (after any wait for a rate budget, which is not latency)."""
        turn.sent_at = self.clock()

    def answered(self, turn: Turn, tokens: int, *, full: bool = False) -> None:
        """A batch of `tokens` came back; its latency steers the next ones. `full`: it held
        as many inputs as a request may, so no batch will be larger, whatever its tokens."""
        seconds = max(self.clock() - turn.sent_at, 1e-6)
        target = self.timeout * TARGET_SHARE
        if seconds < target:
            # Only a batch near the current size says the next ones would be quick too.
            near = full or 2 * tokens >= self.budget
            quick = seconds < self.timeout * FAST_SHARE and near
            self._resize(max(self.budget, min(GROWTH * tokens, tokens * target / seconds)))
            if quick and self.limit < self.ceiling:
                self._concurrency(turn, self.limit + 1)
        elif seconds <= self.timeout * NEAR_SHARE:
            if self.limit > 2:
                self._concurrency(turn, self.limit - 1)
        else:
            self._resize(min(self.budget, tokens * target / seconds))
            self.slowed = True
            if self.limit > 1:
                self._concurrency(turn, self.limit - 1)

    def timed_out(self, turn: Turn, tokens: int) -> None:
        """No answer within the timeout: the server queues far past it."""
        self._resize(min(self.budget, tokens * TARGET_SHARE))
        self.slowed = True
        self.limit = 1
        self._changed_at = self._sent

    def _resize(self, tokens: float) -> None:
        self.budget = max(1, min(self.cap, int(tokens)))

    def _concurrency(self, turn: Turn, limit: int) -> None:
        if turn.seq <= self._changed_at:
            return  # sent before the last change: it does not speak for the new setting
        self.limit = limit
        self._changed_at = self._sent
        self._slots.hand_over()  # a raised limit lets waiting requests go now
