"""Pacing on a fake clock: budgets, bursts after idling, pauses, adaptive concurrency."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from conftest import FakeClock

from ragidx.embed.limiter import AdaptiveConcurrency, RateLimiter, TokenBucket


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
