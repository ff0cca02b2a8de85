"""Pacing on a fake clock: budgets, bursts after idling, pauses, adaptive concurrency."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from helpers import FakeClock

from ragidx.embed.limiter import (
    AdaptiveConcurrency,
    RateLimiter,
    Reading,
    ServerBudget,
    TokenBucket,
)


def limiter(clock: FakeClock, **budgets: float) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep, **budgets)


def test_requests_are_paced_evenly_from_the_start() -> None:
    clock = FakeClock()
    rl = limiter(clock, rpm=60)

    async def go() -> None:
        for _ in range(5):
            await rl.acquire(0)

    asyncio.run(go())
    assert clock.waits == [1.0, 1.0, 1.0, 1.0]  # no burst: one request a second
    assert clock.now == 4.0


def test_token_budget_paces_by_cost() -> None:
    clock = FakeClock()
    rl = limiter(clock, tpm=6000)  # 100 tokens a second

    async def go() -> None:
        for cost in (50, 50, 300, 10):
            await rl.acquire(cost)

    asyncio.run(go())
    assert clock.waits == [0.5, 0.5, 3.0]  # a batch above a second's worth is paid off after


def test_an_idle_spell_earns_a_second_not_a_minute() -> None:
    clock = FakeClock()
    rl = limiter(clock, rpm=600)  # 10 a second

    async def go() -> None:
        await rl.acquire(0)
        clock.now += 120  # two idle minutes
        for _ in range(12):
            await rl.acquire(0)

    asyncio.run(go())
    assert len(clock.waits) == 1  # 10 banked plus the one that may go into debt
    assert clock.waits == [0.1]


def test_both_budgets_hold_at_once() -> None:
    clock = FakeClock()
    rl = limiter(clock, rpm=60, tpm=600)

    async def go() -> None:
        for _ in range(3):
            await rl.acquire(20)  # the token budget allows 30 a minute, the request one 60

    asyncio.run(go())
    assert clock.waits == [2.0, 2.0]


def test_a_pause_holds_every_request() -> None:
    clock = FakeClock()
    rl = limiter(clock)

    async def go() -> None:
        await rl.acquire(0)
        rl.pause(5)
        rl.pause(2)  # a shorter pause does not cut a longer one short
        await rl.acquire(0)

    asyncio.run(go())
    assert clock.waits == [5.0]


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0, FakeClock())


def test_concurrency_drops_to_what_the_server_bore_and_creeps_back() -> None:
    aimd = AdaptiveConcurrency(8)

    async def go() -> None:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(6):
                await stack.enter_async_context(aimd)
            aimd.overloaded()  # six in flight, one refused: the server bore five
        assert aimd.limit == 5
        async with aimd:
            aimd.overloaded()
            aimd.overloaded()
        assert aimd.limit == 1  # never below one
        successes = 0
        while aimd.limit < 8:
            aimd.succeeded()
            successes += 1
        assert 100 < successes < 200  # slow probing: four times the limit per step
        aimd.succeeded()
        assert aimd.limit == 8  # never above the ceiling

    asyncio.run(go())


def test_requests_in_flight_never_exceed_the_limit() -> None:
    aimd = AdaptiveConcurrency(4)
    peak = 0

    async def request(i: int) -> None:
        nonlocal peak
        async with aimd:
            peak = max(peak, aimd.in_flight)
            await asyncio.sleep(0)
            if i == 3:
                aimd.overloaded()  # four in flight: down to three from here on
            await asyncio.sleep(0)

    async def go() -> int:
        await asyncio.gather(*(request(i) for i in range(4)))
        late_peak = 0

        async def late() -> None:
            nonlocal late_peak
            async with aimd:
                late_peak = max(late_peak, aimd.in_flight)
                await asyncio.sleep(0)

        await asyncio.gather(*(late() for _ in range(10)))
        return late_peak

    late_peak = asyncio.run(go())
    assert peak == 4
    assert late_peak == 3


# The server's budget, as the x-ratelimit headers report it.


def test_the_wait_is_for_the_units_missing_not_the_whole_reset() -> None:
    server = ServerBudget()
    assert server.observe(Reading(remaining=49, reset=0.1, limit=50), spent=1, ahead=4) == 0
    # OpenAI's meaning: 50 a window, 2 left, whole again in 4.8 s, so 10 come back a second.
    wait = server.observe(Reading(remaining=2, reset=4.8, limit=50), spent=1, ahead=5)
    assert wait == pytest.approx(3 / (48 / 4.8 * ServerBudget.SLACK))  # about 0.31 s, not 4.8
    assert server.rate == pytest.approx(50 / 4.8 * ServerBudget.SLACK)


def test_a_limit_per_minute_over_a_bucket_of_a_second() -> None:
    # ragidx's test server: limit 600 a minute, a bucket of 10 whose reset is until it is full.
    server = ServerBudget()
    assert server.observe(Reading(remaining=9, reset=0.1, limit=600), spent=1, ahead=1) == 0
    assert server.capacity == 10  # the most ever left plus what that request took
    wait = server.observe(Reading(remaining=3, reset=0.7, limit=600), spent=1, ahead=5)
    assert wait == pytest.approx(2 / (7 / 0.7 * ServerBudget.SLACK))  # 2 missing at 10 a second


def test_the_wait_is_never_longer_than_the_reset() -> None:
    server = ServerBudget()
    # Nothing tells how much the budget holds: the reset is the most to wait.
    assert server.observe(Reading(remaining=0, reset=2.0), spent=1, ahead=4) == 2.0
    assert server.observe(Reading(remaining=0, reset=0.0), spent=1, ahead=4) == 0.0


def test_a_first_reading_of_an_empty_budget_holds_for_the_reset() -> None:
    clock = FakeClock()
    rl = limiter(clock)

    async def go() -> None:
        await rl.acquire(0)
        # A refused request's reading: nothing taken, nothing left, nothing known of the rate.
        rl.heed("tokens", Reading(remaining=0, reset=2.0), spent=0, need=50, at=0.0)
        await rl.acquire(0)

    asyncio.run(go())
    assert clock.waits == [2.0]


def test_no_wait_while_enough_is_left() -> None:
    server = ServerBudget()
    assert server.observe(Reading(remaining=49, reset=5.0, limit=50), spent=1, ahead=4) == 0
    assert server.rate == pytest.approx(10 * ServerBudget.SLACK)


def test_the_capacity_is_learned_never_taken_from_the_limit_alone() -> None:
    # A budget first seen nearly spent: what it holds is unknown, so the first wait may be the
    # whole reset, as long as it takes for the budget to show itself whole.
    server = ServerBudget()
    assert server.observe(Reading(remaining=2, reset=4.8, limit=50), spent=1, ahead=5) == 4.8
    assert server.observe(Reading(remaining=49, reset=5.0, limit=50), spent=1, ahead=5) == 0
    assert server.capacity == 50


def test_the_lower_of_the_given_and_the_servers_rate_paces() -> None:
    reading = Reading(remaining=49, reset=5.0, limit=50)  # 10 a second
    for rpm, gap in ((60, 1.0), (6000, 1 / (10 * ServerBudget.SLACK))):
        clock = FakeClock()
        rl = limiter(clock, rpm=rpm)

        async def go(rl: RateLimiter = rl, clock: FakeClock = clock) -> None:
            for _ in range(4):
                await rl.acquire(0)
                rl.heed("requests", reading, spent=1, need=1, at=clock.now)

        asyncio.run(go())
        assert clock.waits == pytest.approx([gap] * 3, abs=1e-6)  # never the two added up


def test_requests_sent_since_the_reading_count_as_needed() -> None:
    clock = FakeClock()
    rl = limiter(clock)

    async def go() -> None:
        await rl.acquire(0)
        rl.heed("requests", Reading(remaining=49, reset=5.0, limit=50), spent=1, need=1, at=0.0)
        clock.now = 0.5
        for _ in range(2):  # sent after the next reading was taken, at 0.4
            await rl.acquire(0)
        rl.heed("requests", Reading(remaining=1, reset=5.0, limit=50), spent=1, need=1, at=0.4)
        await rl.acquire(0)

    asyncio.run(go())
    refill = 49 / 5.0 * ServerBudget.SLACK
    assert clock.waits == pytest.approx([0.4 + 2 / refill - 0.5], abs=1e-6)  # 3 needed, 1 left


def test_nothing_is_banked_during_a_pause() -> None:
    clock = FakeClock()
    rl = limiter(clock, rpm=600)

    async def go() -> None:
        await rl.acquire(0)
        rl.pause(2)
        for _ in range(3):
            await rl.acquire(0)

    asyncio.run(go())
    # After the pause, evenly again: a burst would come back as a burst a window later.
    assert clock.waits == pytest.approx([2.0, 0.1, 0.1])


class SlidingWindow:
    """A server's budget on the fake clock: `limit` per sliding window, reset in OpenAI's
    meaning (until the window's whole usage has expired)."""

    def __init__(self, clock: FakeClock, limit: int, seconds: float) -> None:
        self.clock, self.limit, self.seconds = clock, limit, seconds
        self.spent: list[float] = []

    def take(self) -> tuple[bool, Reading]:
        now = self.clock.now
        self.spent = [t for t in self.spent if t + self.seconds > now + 1e-9]
        ok = len(self.spent) < self.limit
        if ok:
            self.spent.append(now)
        reset = self.spent[-1] + self.seconds - now if self.spent else 0.0
        return ok, Reading(self.limit - len(self.spent), reset, self.limit)


class Refilling:
    """A bucket of `capacity` refilled at `rate`; its reset is until it is full, its limit
    header `limit` (a minute's, for ragidx's test server)."""

    def __init__(self, clock: FakeClock, capacity: float, rate: float, limit: float) -> None:
        self.clock, self.capacity, self.rate, self.limit = clock, capacity, rate, limit
        self.level, self.stamp = capacity, 0.0

    def take(self) -> tuple[bool, Reading]:
        now = self.clock.now
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        ok = self.level >= 1 - 1e-9
        self.level -= ok
        reset = (self.capacity - self.level) / self.rate
        return ok, Reading(int(self.level + 1e-9), reset, self.limit)


@pytest.mark.parametrize("rpm", [600, None], ids=["told", "headers"])
@pytest.mark.parametrize("meaning", ["window", "refilling", "bucket-of-a-second"])
def test_pacing_uses_the_budget(meaning: str, rpm: float | None) -> None:
    # 10 a second each: 50 per sliding 5-second window; a bucket of 50 refilled continuously;
    # a bucket of 10 whose limit header says 600 (a minute's).
    clock = FakeClock()
    rl = limiter(clock, **({"rpm": rpm} if rpm else {}))
    server = {
        "window": SlidingWindow(clock, 50, 5.0),
        "refilling": Refilling(clock, 50, 10, 50),
        "bucket-of-a-second": Refilling(clock, 10, 10, 600),
    }[meaning]
    refused = 0

    async def go() -> None:
        nonlocal refused
        for _ in range(400):
            await rl.acquire(0)
            sent = clock.now
            ok, reading = server.take()
            refused += not ok
            rl.heed("requests", reading, spent=float(ok), need=1, at=sent)

    asyncio.run(go())
    assert refused == 0
    assert 400 / clock.now >= 10 * 0.95  # pausing for the whole reset got 57% of this


def test_a_request_waiting_for_a_slot_is_served_before_later_ones() -> None:
    # After an overload leaves one slot, a worker that re-enters straight after its answer
    # must queue behind the request already waiting, not take the slot it just freed.
    aimd = AdaptiveConcurrency(2)
    order: list[str] = []

    async def waiting() -> None:
        async with aimd:
            order.append("waiting")

    async def go() -> None:
        await aimd.__aenter__()
        await aimd.__aenter__()
        aimd.overloaded()  # two in flight, one refused: the limit drops to one
        waiter = asyncio.create_task(waiting())
        await asyncio.sleep(0)
        await aimd.__aexit__(None, None, None)
        await aimd.__aexit__(None, None, None)  # one slot frees: the waiting request's
        async with aimd:  # the same worker again, straight away
            order.append("later")
        await waiter

    asyncio.run(go())
    assert order == ["waiting", "later"]
    assert aimd.in_flight == 0


def test_a_cancelled_request_gives_its_slot_to_the_next_in_line() -> None:
    aimd = AdaptiveConcurrency(1)
    served: list[str] = []

    async def wants(name: str) -> None:
        async with aimd:
            served.append(name)

    async def go() -> None:
        await aimd.__aenter__()
        first = asyncio.create_task(wants("first"))
        second = asyncio.create_task(wants("second"))
        await asyncio.sleep(0)
        await aimd.__aexit__(None, None, None)  # the slot is handed to `first` ...
        first.cancel()  # ... which is cancelled before it runs
        await asyncio.gather(first, second, return_exceptions=True)

    asyncio.run(go())
    assert served == ["second"]
    assert aimd.in_flight == 0
