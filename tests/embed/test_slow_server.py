"""A slow server with default flags (issue 13): timeouts split batches, latency steers batch
size and concurrency, and chunks fit what a TEI server says its model reads.

The end-to-end runs are the issue's scenario scaled down: a server that computes one request
at a time (400 inputs a second, not 25) and a 2 s timeout (not 60). `bench/slow_server.py`
runs it at full size and prints the figures.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from helpers import Cli, FakeClock, stored_vectors, write

from ragidx.embed import OpenAIEmbedder
from ragidx.embed.adaptive import START_TOKENS, Adaptive
from ragidx.embed.http import HttpSettings
from ragidx.errors import TransientError
from ragidx.testing.server import EmbeddingServer, Faults, expected_vector, serve

DIMS = 64


def abstracts(root: Path, count: int) -> None:
    """`count` one-chunk files of about 180 estimated tokens each."""
    for i in range(count):
        words = " ".join(f"term{(i * 7 + j) % 311}" for j in range(60))
        write(root, {f"corpus/d{i % 10}/a{i:05d}.txt": f"Abstract {i}. {words}.\n"})


def index(cli: Cli, server: EmbeddingServer, *args: str, provider: str = "openai") -> Any:
    base = server.url + ("/v1" if provider == "openai" else "")
    return cli(
        "index", "corpus", "--db", "idx.db", "--json", "--provider", provider,
        "--base-url", base, "--model", "test-model", *args,
    )  # fmt: skip


def stored() -> list[tuple[str, Any]]:
    return [(text, vector) for _, text, vector in stored_vectors()]


def assert_exact(count: int) -> None:
    rows = stored()
    assert len(rows) == count
    for text, vector in rows:
        assert np.allclose(vector, expected_vector(text, DIMS), atol=1e-6)


# -- end to end ------------------------------------------------------------------------------


def test_default_flags_index_everything_at_the_servers_pace(cli: Cli, work: Path) -> None:
    # Whole, the corpus takes 3 s to compute, more than the timeout: sent as the provider's
    # limits allow (as before), every batch timed out and every file failed.
    files = 1200
    abstracts(work, files)
    with serve(Faults(dims=DIMS, serial_rate=400)) as server:
        result = index(cli, server, "--timeout", "2")
    assert result.exit_code == 0, result.stderr
    summary = result.summary()
    assert summary["indexed"] == files and summary["failed"] == 0
    assert_exact(files)
    # What the server computed for answers no one read (and the probe for dims, 1 input).
    assert server.counters.inputs <= 1.2 * files + 1


def test_a_batch_that_times_out_is_split_and_sent_again(cli: Cli, work: Path) -> None:
    # 12 inputs take the server 1.2 s, past the 1 s timeout; with no retries left, only
    # splitting can save them. The server still computes the batch no one waits for.
    abstracts(work, 12)
    with serve(Faults(dims=DIMS, serial_rate=10)) as server:
        args = ("--dimensions", str(DIMS), "--batch-size", "12", "--timeout", "1")
        result = index(cli, server, *args, "--max-retries", "0")
    assert result.exit_code == 0, result.stderr
    assert result.summary()["indexed"] == 12
    assert_exact(12)
    assert server.counters.inputs == 24  # the batch that timed out, then its pieces
    assert server.counters.requests > 2


def test_a_fast_server_gets_large_batches_soon(cli: Cli, work: Path) -> None:
    files = 3000
    for i in range(files):
        write(work, {f"corpus/d{i % 10}/n{i:05d}.md": f"Note {i}.\n"})
    with serve(Faults(dims=DIMS)) as server:
        result = index(cli, server, "--dimensions", str(DIMS))
    assert result.exit_code == 0, result.stderr
    assert result.summary()["indexed"] == files
    # Batches start small and grow fourfold on quick answers, up to the provider's 2,048.
    assert server.counters.requests <= 12


# -- the HTTP client -------------------------------------------------------------------------


def test_a_timed_out_batch_is_left_to_the_caller_and_a_single_input_is_retried() -> None:
    sizes: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["input"]
        sizes.append(len(texts))
        if len(sizes) == 1:
            await asyncio.sleep(5)
        data = [{"index": i, "embedding": [1.0, float(i)]} for i in range(len(texts))]
        return httpx.Response(200, json={"data": data})

    async def go(texts: list[str]) -> tuple[Any, Adaptive]:
        settings = HttpSettings(base_url="http://server/v1", model="m", timeout=0.05)
        embedder = OpenAIEmbedder(settings, transport=httpx.MockTransport(handler))
        try:
            return await embedder.embed(texts), embedder.adaptive
        except TransientError as exc:
            return exc, embedder.adaptive
        finally:
            await embedder.aclose()

    error, adaptive = asyncio.run(go(["a", "b", "c", "d"]))
    assert isinstance(error, TransientError) and error.kind == "timeout"
    assert sizes == [4]  # not sent whole again
    assert adaptive.limit == 1  # and one request in flight from now on
    sizes.clear()
    vectors, _ = asyncio.run(go(["a"]))
    assert vectors.shape == (1, 2) and sizes == [1, 1]


# -- the controller, on a fake clock ---------------------------------------------------------


async def answer(
    control: Adaptive, clock: FakeClock, tokens: int, seconds: float, *, full: bool = False
) -> None:
    async with control.turn() as turn:
        control.start(turn)
        clock.now += seconds
        control.answered(turn, tokens, full=full)


def test_quick_answers_grow_the_batch_up_to_the_cap() -> None:
    clock = FakeClock()
    control = Adaptive(timeout=60, ceiling=4, cap=300_000, clock=clock)
    assert control.budget == START_TOKENS and control.limit == 2

    async def go() -> None:
        async with control.turn() as early:
            control.start(early)
            await answer(control, clock, START_TOKENS, 0.5)
            assert control.budget == 4 * START_TOKENS  # at most four times the batch answered
            assert control.limit == 3  # and a request more in flight
            control.answered(early, START_TOKENS)  # sent before: it compounds neither
            assert control.budget == 4 * START_TOKENS and control.limit == 3
        await answer(control, clock, 100_000, 10)
        assert control.budget == 150_000  # what would take a quarter of the timeout
        await answer(control, clock, 150_000, 1)
        assert control.budget == 300_000 and control.limit == 4

    asyncio.run(go())


def test_quick_answers_to_batches_full_by_count_bring_more_requests() -> None:
    """A batch capped by its number of inputs (`--batch-size 64` of short chunks) is far below
    the token budget, yet no batch will be larger: its quick answers count."""
    clock = FakeClock()
    control = Adaptive(timeout=60, ceiling=4, cap=300_000, clock=clock)
    control.bound(300_000, fixed=True)

    async def go() -> None:
        await answer(control, clock, 20_000, 0.05)  # not full: far below the size, it says nothing
        assert control.limit == 2
        for _ in range(2):
            await answer(control, clock, 20_000, 0.05, full=True)
        assert control.limit == 4

    asyncio.run(go())


def test_slow_answers_shrink_the_batch_and_the_requests_in_flight() -> None:
    clock = FakeClock()
    control = Adaptive(timeout=60, ceiling=4, cap=300_000, clock=clock)
    control.bound(40_000, fixed=True)
    assert control.budget == 40_000  # a size given starts there
    assert not control.holds_back(1_000_000)  # nothing said yet

    async def go() -> None:
        await answer(control, clock, 40_000, 1)
        await answer(control, clock, 40_000, 1)
        assert control.limit == 4
        async with control.turn() as early:  # sent before the change below
            control.start(early)
            await answer(control, clock, 40_000, 20)  # saturated: more in flight only queue
            assert control.budget == 40_000 and control.limit == 3
            control.answered(early, 40_000)
            assert control.limit == 3  # one step a round
        await answer(control, clock, 40_000, 40)  # near the timeout
        assert control.budget == 15_000 and control.limit == 2
        # A batch made before, over twice the new size, would come near the timeout again.
        assert control.holds_back(40_000) and not control.holds_back(30_000)

    asyncio.run(go())


def test_a_timeout_leaves_one_request_and_quick_answers_bring_more_back() -> None:
    clock = FakeClock()
    control = Adaptive(timeout=60, ceiling=4, cap=300_000, clock=clock)
    control.bound(300_000, fixed=True)

    async def go() -> None:
        async with control.turn() as turn:
            control.start(turn)
            clock.now += 60
            control.timed_out(turn, 80_000)
        assert control.budget == 20_000 and control.limit == 1
        await answer(control, clock, 5_000, 1)  # quick, but a batch well below the size
        assert control.limit == 1
        for limit in (2, 3, 4, 4):
            await answer(control, clock, control.budget, 1)  # a step a round, up to the ceiling
            assert control.limit == limit
        assert control.budget == 300_000

    asyncio.run(go())


def test_requests_in_flight_keep_to_the_limit() -> None:
    control = Adaptive(timeout=60, ceiling=3, cap=1000)
    peaks: list[int] = []

    async def request() -> None:
        async with control.turn():
            peaks.append(control.in_flight)
            await asyncio.sleep(0.01)

    async def go() -> None:
        assert control.limit == 2  # two at first
        for limit in (2, 3, 1):
            control.limit = limit
            await asyncio.gather(*(request() for _ in range(8)))
            assert max(peaks) == limit
            peaks.clear()

    asyncio.run(go())
    assert control.in_flight == 0


def test_a_request_waiting_for_its_turn_is_not_passed_by_later_ones() -> None:
    # A worker whose request ends takes its next batch at once, with no await in between:
    # it must queue behind the request already waiting, not take the slot it just freed.
    # (Passed every time, a run's third batch waited until the end of the run.)
    control = Adaptive(timeout=60, ceiling=1, cap=1000)
    order: list[str] = []

    async def waiting() -> None:
        async with control.turn():
            order.append("waiting")

    async def go() -> None:
        first = control.turn()
        await first.__aenter__()
        waiter = asyncio.create_task(waiting())
        await asyncio.sleep(0)  # it waits for the turn
        await first.__aexit__(None, None, None)
        async with control.turn():  # the same worker again, straight away
            order.append("later")
        await waiter

    asyncio.run(go())
    assert order == ["waiting", "later"]
    assert control.in_flight == 0


# -- what a TEI server says its model reads --------------------------------------------------


def test_chunks_fit_what_the_model_reads(cli: Cli, work: Path) -> None:
    body = " ".join(f"word{j}" for j in range(400))
    write(work, {"corpus/long.md": f"# Long\n\n{body}\n", "corpus/short.md": "# Short\n\nHi.\n"})
    with serve(Faults(dims=DIMS, max_input_length=64, max_chars=64 * 4)) as server:
        result = index(cli, server, provider="tei")
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    assert set(server.counters.statuses) == {200}  # nothing refused as too long
    rows = cli("export", "--db", "idx.db").json_lines()
    assert len(rows) > 4 and max(r["tokens"] for r in rows) <= 62
    assert_exact(len(rows))


def test_a_chunk_size_above_what_the_model_reads_is_warned_about(cli: Cli, work: Path) -> None:
    write(work, {"corpus/a.md": "# A\n\nSome text.\n"})
    with serve(Faults(dims=DIMS, max_input_length=64)) as server:
        result = index(cli, server, "--chunk-tokens", "200", provider="tei")
    assert result.exit_code == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "warning: --chunk-tokens 200 is more than the 64 tokens the model reads" in said
    rows = cli("export", "--db", "idx.db").json_lines()
    assert len(rows) == 1
