"""Stage 4, embed: batches in, vectors and finished parts out.

In: `Batch`es of chunks. Out, to the commit stage: the vectors received (`Embeddings`,
keyed for the cache, before any file that uses them), and a `PartDone` for each part whose
last chunk this answer settled. Chunks of other parts that wait for the same text
(`Inflight`) are settled with it.

A batch refused for its size or for one bad input is halved until the refusal is pinned on
single inputs (a timeout likewise: its size is what the server could not do in time); a
chunk refused as too long is refitted (`refit`: split, truncated, or failed). An input that
still fails fails its file, not the run; `FatalEmbedError` (a key refused, no server) ends
the run. Where the embedder adapts, batches made before the size grew are sent as one.

On stop, batches not yet sent are let go, and those in flight get the grace period
(`Grace`) to come back; past it they are given up, and their files wait for the next run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias, TypeVar, cast

from ragidx.chunk.tokens import counter
from ragidx.config import ChunkConfig, LongChunkPolicy
from ragidx.embed import Embedder, Offline, Vectors, validate_vectors
from ragidx.embed.base import stack
from ragidx.errors import EmbedError, FatalEmbedError, RejectedError, TransientError
from ragidx.events import BatchEmbedded, EventSink
from ragidx.models import Chunk
from ragidx.pipeline.batcher import Batch, merge, slices
from ragidx.pipeline.cache import CacheView, Inflight
from ragidx.pipeline.channel import Receiver, Sender
from ragidx.pipeline.committing import Outcome, PartDone
from ragidx.pipeline.pending import Part, Piece, Ref, rebase
from ragidx.pipeline.refit import Answer, Refitted, refit, too_long
from ragidx.pipeline.workers import Workers
from ragidx.store import Embeddings

if TYPE_CHECKING:
    from ragidx.embed import HttpEmbedder

__all__ = ["Embedding", "Grace"]

T = TypeVar("T")

# Refusals that halving a batch can pin on single inputs, and the timeout of a batch too
# large for the server to answer in time (`embed` leaves it to be split, not sent again).
_SPLITTABLE = frozenset({"too_large", "too_long", "rejected_input", "timeout"})

_Settled: TypeAlias = "Answer | list[Piece]"
"""A chunk's answer as its file takes it: a vector, an error, or its refitted pieces."""


class Grace:
    """Requests in flight, each bounded by the grace period once stopping is asked."""

    def __init__(self) -> None:
        self.at: float | None = None
        self._deadlines: set[asyncio.Timeout] = set()

    def begin(self, seconds: float) -> None:
        """Stopping is asked: what is in flight, or goes out now, has `seconds` left."""
        self.at = asyncio.get_running_loop().time() + seconds
        for deadline in self._deadlines:
            deadline.reschedule(self.at)

    async def within(self, work: Callable[[], Awaitable[T]]) -> T:
        """`work()`, or `TimeoutError` once the grace period is over."""
        async with asyncio.timeout(self.at) as deadline:
            self._deadlines.add(deadline)
            try:
                return await work()
            finally:
                self._deadlines.discard(deadline)


class Embedding:
    """The embedders: a run has `config.embed_workers` tasks in `run`, sharing the figures."""

    def __init__(
        self,
        embedder: Embedder,
        cache: CacheView,
        inflight: Inflight,
        policy: LongChunkPolicy,
        chunking: ChunkConfig,
        max_inputs: int,
        max_tokens: int,
        stopping: asyncio.Event,
        emit: EventSink,
    ) -> None:
        self.embedder = embedder
        self.chunking = chunking
        self.compute: Callable[[list[str], list[int]], Awaitable[Vectors]] = _counted(embedder)
        """How a batch's vectors are made, from its texts and their tokens: the embedder's
        `embed`, or its offline work in the worker processes (`offload`)."""
        self.cache = cache
        self.inflight = inflight
        self.policy = policy
        self.max_inputs = max_inputs
        self.max_tokens = max_tokens
        self.adaptive = embedder.adaptive
        self.stopping = stopping
        self.emit = emit
        self.grace = Grace()
        self.calls = 0
        """Requests made through the embedder (its own count may hold retries too)."""
        self.embedded = 0
        self.reused = 0
        self.sent_tokens = 0

    def start(self, *, fixed_size: bool) -> None:
        """The run starts. Batch sizes follow the server's latency (`embed.adaptive`), under
        the provider's limits or the size given (`fixed_size`: start there, not small)."""
        if self.adaptive is not None:
            self.adaptive.bound(self.max_tokens, fixed=fixed_size)

    def budget(self) -> int:
        """Tokens a batch may hold now."""
        return self.max_tokens if self.adaptive is None else self.adaptive.budget

    async def run(self, batches: Receiver[Batch[Ref]], outcomes: Sender[Outcome]) -> None:
        """Embed batches until they end; then close both ends."""
        with batches, outcomes:
            async for batch in batches:
                if not self.stopping.is_set():
                    await self._embed(self._coalesce(batch, batches), outcomes)

    def _coalesce(self, batch: Batch[Ref], batches: Receiver[Batch[Ref]]) -> Batch[Ref]:
        """The batch, with those queued behind it while they fit: batches made before the
        size grew go out as one. (Without a size to follow, batches are as they were made.)"""
        if self.adaptive is None:
            return batch
        budget = self.adaptive.budget
        while batch.tokens < budget and len(batch) < self.max_inputs:
            more = batches.peek_nowait()
            if more is None or batch.tokens + more.tokens > budget:
                break
            if len(batch) + len(more) > self.max_inputs:
                break
            batch = merge(batch, batches.receive_nowait())
        return batch

    async def _embed(self, batch: Batch[Ref], outcomes: Sender[Outcome]) -> None:
        started = time.monotonic()
        try:
            answers = await self.grace.within(lambda: self._answers(batch))
        except TimeoutError:
            return  # stopping, and the grace period is over: these files wait for next time
        self.sent_tokens += batch.tokens
        stats = self.embedder.stats  # after refitting: its requests included
        seconds = time.monotonic() - started
        self.emit(
            BatchEmbedded(
                len(batch),
                batch.tokens,
                seconds,
                stats.requests if stats is not None else self.calls,
                stats.retries if stats is not None else 0,
                stats.rate_limited if stats is not None else 0,
            )
        )
        received, settled = self._received(batch, answers)
        if received.keys:
            await outcomes.send(received)  # cached before any file that uses them
        for result, (part, i) in zip(settled, batch.refs, strict=True):
            # A refitted chunk's own key has no vector: only its pieces' keys do.
            vector = not isinstance(result, EmbedError | list)
            waiters = self.inflight.settle(part.keys[i], received=vector)
            for n, (waiter, j) in enumerate(waiters):
                _settle(waiter, j, result, part.chunks[i])
                if n and not isinstance(result, EmbedError):
                    self.reused += 1  # it waited for the sender's answer
                waiter.remaining -= 1
                if waiter.remaining == 0:
                    await outcomes.send(PartDone(waiter))

    async def _answers(self, batch: Batch[Ref]) -> list[Answer | Refitted]:
        """An answer for each chunk of the batch, chunks too long for the model refitted."""
        tokens = [part.chunks[i].tokens for part, i in batch.refs]
        answers: list[Answer | Refitted] = list(await self._split(batch.texts, tokens))
        for n, (answer, (part, i)) in enumerate(zip(answers, batch.refs, strict=True)):
            if too_long(answer):
                answers[n] = await refit(
                    part.chunks[i], answer, self.policy, self._pieces, self.chunking
                )
        return answers

    async def _pieces(self, texts: list[str]) -> list[Answer | None]:
        """Embed a refitted chunk's pieces, but not those the cache holds (None for them)."""
        keys = [self.cache.key(t) for t in texts]
        have = await asyncio.to_thread(self.cache.cached, keys)
        have |= {k for k in keys if k in self.inflight.received}
        send = [t for t, k in zip(texts, keys, strict=True) if k not in have]
        count = counter(self.chunking.tokenizer).count
        sizes = [count(t) for t in send]
        answers = iter(await self._split(send, sizes) if send else [])
        return [None if k in have else next(answers) for k in keys]

    def _received(
        self, batch: Batch[Ref], answers: list[Answer | Refitted]
    ) -> tuple[Embeddings, list[_Settled]]:
        """The vectors that came back, refitted pieces' included, keyed for the cache; and
        each chunk's answer as its file takes it."""
        keys: list[bytes] = []
        vectors = []
        settled: list[_Settled] = []
        for answer, (part, i) in zip(answers, batch.refs, strict=True):
            if isinstance(answer, list):
                pieces: list[Piece] = []
                for piece, vector in answer:
                    pieces.append((piece, self.cache.key(piece.input)))
                    if vector is None:  # in the cache already
                        self.reused += 1
                        continue
                    keys.append(pieces[-1][1])
                    vectors.append(vector)
                settled.append(pieces)
                continue
            if not isinstance(answer, EmbedError):
                keys.append(part.keys[i])
                vectors.append(answer)
            settled.append(answer)
        self.embedded += len(keys)
        return Embeddings(keys, stack(vectors)), settled

    async def _split(self, texts: list[str], tokens: list[int]) -> list[Answer]:
        """One vector or one error per text, sent in batches the current size allows."""
        budget = self.budget()
        if len(texts) > 1 and sum(tokens) > budget:
            answers: list[Answer] = []
            for a, b in slices(tokens, budget):
                answers += await self._send(texts[a:b], tokens[a:b])
            return answers
        return await self._send(texts, tokens)

    def offload(self, workers: Workers) -> None:
        """Make vectors in the worker processes, where the embedder is CPU work that can be
        done in another process (`Offline.offload`)."""
        work = self.embedder.offload() if isinstance(self.embedder, Offline) else None
        if work is not None and workers.size:
            fn, args = work

            async def compute(texts: list[str], tokens: list[int]) -> Vectors:
                return await workers.call(fn, *args, texts)

            self.compute = compute

    async def _send(self, texts: list[str], tokens: list[int]) -> list[Answer]:
        """One request; a batch refused for its size or one bad input is halved and sent
        again, until the refusal is pinned on single inputs."""
        self.calls += 1
        try:
            raw = await self.compute(texts, tokens)
            return list(validate_vectors(raw, len(texts), self.embedder.dims))
        except FatalEmbedError:
            raise
        except (RejectedError, TransientError) as exc:
            if len(texts) == 1 or exc.kind not in _SPLITTABLE:
                return [exc] * len(texts)
            half = len(texts) // 2
            first = await self._split(texts[:half], tokens[:half])
            return [*first, *await self._split(texts[half:], tokens[half:])]
        except EmbedError as exc:
            return [exc] * len(texts)


def _settle(part: Part, i: int, result: _Settled, origin: Chunk) -> None:
    """Chunk `i` of `part` takes `result`, the answer for `origin` (the same input)."""
    if isinstance(result, list):
        part.refitted[i] = rebase(result, origin, part.chunks[i])
    elif isinstance(result, EmbedError):
        file = part.file
        file.failure = file.failure or f"{result.kind}: {result.message}"


def _counted(embedder: Embedder) -> Callable[[list[str], list[int]], Awaitable[Vectors]]:
    """`embed`, told the tokens of each text where the embedder paces and sizes requests by
    them (`--tpm`, the adaptive batch): the run's own count, the one its chunks were cut by."""
    # Asked of the class, not by isinstance: the HTTP module is not loaded for offline runs.
    if getattr(type(embedder), "takes_tokens", False):
        return cast("HttpEmbedder", embedder).embed

    async def embed(texts: list[str], tokens: list[int]) -> Vectors:
        return await embedder.embed(texts)

    return embed
