"""The typed channel between stages: ends, clones, bounds and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from ragidx.pipeline.channel import (
    BrokenChannel,
    ClosedEnd,
    EndOfStream,
    Receiver,
    Sender,
    channel,
)

T = TypeVar("T")


def run(work: Awaitable[T]) -> T:
    async def main() -> T:
        return await work

    return asyncio.run(main())


async def settle() -> None:
    """Let every ready task run until it waits."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_the_stream_ends_when_the_last_clone_closes() -> None:
    async def main() -> list[int]:
        send, receive = channel[int](2)

        async def produce(sender: Sender[int], start: int) -> None:
            with sender:
                for i in range(start, start + 3):
                    await sender.send(i)

        with send:
            jobs = [produce(send.clone(), start) for start in (0, 10, 20)]
        async with asyncio.TaskGroup() as tg:
            for job in jobs:
                tg.create_task(job)
            got = [item async for item in receive]
        return got

    got = run(main())
    assert sorted(got) == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    for start in (0, 10, 20):  # each producer's items in its order
        assert [i for i in got if start <= i < start + 10] == [start, start + 1, start + 2]


def test_items_sent_before_the_close_are_still_received() -> None:
    async def main() -> None:
        send, receive = channel[str](10)
        await send.send("a")
        await send.send("b")
        send.close()
        assert await receive.receive() == "a"
        assert receive.receive_nowait() == "b"
        with pytest.raises(EndOfStream):
            await receive.receive()
        with pytest.raises(EndOfStream):
            receive.receive_nowait()

    run(main())


def test_a_waiting_receiver_sees_the_end() -> None:
    async def main() -> None:
        send, receive = channel[int](1)
        other = send.clone()
        waiting = asyncio.create_task(receive.receive())
        await settle()
        send.close()
        await settle()
        assert not waiting.done()  # one sender is still open
        other.close()
        with pytest.raises(EndOfStream):
            await waiting

    run(main())


def test_a_closed_end_cannot_be_used_and_closing_twice_is_harmless() -> None:
    async def main() -> None:
        send, receive = channel[int](1)
        keep = send.clone()
        send.close()
        send.close()  # does not count twice: the stream has not ended
        with pytest.raises(ClosedEnd):
            await send.send(1)
        with pytest.raises(ClosedEnd):
            send.clone()
        await keep.send(1)
        assert await receive.receive() == 1
        receive.close()
        with pytest.raises(ClosedEnd):
            await receive.receive()

    run(main())


def test_a_full_channel_holds_the_sender_back() -> None:
    async def main() -> None:
        send, receive = channel[int](2)
        await send.send(1)
        await send.send(2)
        third = asyncio.create_task(send.send(3))
        await settle()
        assert not third.done()
        assert await receive.receive() == 1
        await settle()
        assert third.done()
        assert [receive.receive_nowait(), receive.receive_nowait()] == [2, 3]
        with pytest.raises(asyncio.QueueEmpty):
            receive.receive_nowait()

    run(main())


def test_the_bound_is_on_weight_and_a_heavy_item_enters_an_empty_channel() -> None:
    async def main() -> None:
        send, receive = channel[list[int]](10, len)
        await send.send([1] * 6)
        small = asyncio.create_task(send.send([2] * 3))
        await settle()
        assert small.done()  # 9 of 10
        big = asyncio.create_task(send.send([3] * 25))
        await settle()
        assert not big.done()
        await receive.receive()
        await settle()
        assert not big.done()  # 3 held yet: 28 does not fit
        await receive.receive()
        await settle()
        assert big.done()  # heavier than the bound, into an empty channel
        assert len(await receive.receive()) == 25

    run(main())


def test_receive_many_takes_what_is_there_up_to_a_count_or_a_weight() -> None:
    async def main() -> None:
        send, receive = channel[int](100, lambda n: n)
        for n in (5, 5, 5, 1, 1):
            await send.send(n)
        assert await receive.receive_many(10, 8) == [5, 5]  # about 8: stops once at 10
        assert await receive.receive_many(2, 100) == [5, 1]
        assert await receive.receive_many(10, 1) == [1]
        send.close()
        with pytest.raises(EndOfStream):
            await receive.receive_many(10, 10)

    run(main())


def test_peek_leaves_the_item_in_place() -> None:
    async def main() -> None:
        send, receive = channel[int](3)
        assert receive.peek_nowait() is None
        await send.send(7)
        await send.send(8)
        assert receive.peek_nowait() == 7
        assert receive.receive_nowait() == 7
        assert receive.peek_nowait() == 8

    run(main())


def test_closing_every_receiver_breaks_the_channel_for_senders() -> None:
    async def main() -> None:
        send, receive = channel[int](1)
        await send.send(1)
        blocked = asyncio.create_task(send.send(2))
        await settle()
        other = receive.clone()
        receive.close()
        await settle()
        assert not blocked.done()  # a receiver is still open
        other.close()
        with pytest.raises(BrokenChannel):
            await blocked
        with pytest.raises(BrokenChannel):
            await send.send(3)

    run(main())


def test_a_cancelled_receiver_passes_its_item_on() -> None:
    async def main() -> None:
        send, receive = channel[int](5)
        first = asyncio.create_task(receive.receive())
        second = asyncio.create_task(receive.receive())
        await settle()
        await send.send(1)  # wakes the first receiver ...
        first.cancel()  # ... which is cancelled before it takes the item
        await settle()
        assert first.cancelled()
        assert second.done() and second.result() == 1

    run(main())


def test_a_cancelled_sender_leaves_nothing_behind() -> None:
    async def main() -> None:
        send, receive = channel[int](1)
        await send.send(1)
        blocked = asyncio.create_task(send.send(2))
        await settle()
        blocked.cancel()
        await settle()
        send.close()
        assert [item async for item in receive] == [1]

    run(main())


def test_a_timeout_on_receive_loses_no_item() -> None:
    async def main() -> None:
        send, receive = channel[int](5)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await receive.receive()
        await send.send(4)
        send.close()
        assert [item async for item in receive] == [4]

    run(main())


def test_many_consumers_share_the_items() -> None:
    async def main() -> list[int]:
        send, receive = channel[int](4)
        got: list[int] = []

        async def consume(r: Receiver[int]) -> None:
            with r:
                async for item in r:
                    got.append(item)
                    await asyncio.sleep(0)

        async with asyncio.TaskGroup() as tg:
            for _ in range(3):
                tg.create_task(consume(receive.clone()))
            receive.close()
            with send:
                for i in range(50):
                    await send.send(i)
        return got

    assert sorted(run(main())) == list(range(50))


def test_a_channel_holds_at_least_one_item() -> None:
    with pytest.raises(ValueError):
        channel[int](0)
