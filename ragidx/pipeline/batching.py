"""Stage 3, batch: chunks from every reader in, batches for the embedders out.

In: `Ref`s, each a chunk to embed. Out: `Batch`es, bounded by the embedder's inputs per
request and by the current token budget (`budget()`, which follows the server's latency
where the embedder adapts). A part-full batch goes out once no chunk has come for
`linger` seconds; with `linger` None, only full batches go out before the end (a dry run's
count of requests is then the same every time).

On stop, chunks not yet sent never will be: they are let go, and the rest of the stream is
drained so that no reader waits. At the end of the stream, the last batch goes out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ragidx.pipeline.batcher import Batch, Batcher
from ragidx.pipeline.channel import EndOfStream, Receiver, Sender
from ragidx.pipeline.pending import Ref

__all__ = ["Batching"]


class Batching:
    def __init__(
        self,
        max_inputs: int,
        budget: Callable[[], int],
        linger: float | None,
        stopping: asyncio.Event,
        batches: Sender[Batch[Ref]],
    ) -> None:
        self.budget = budget
        self.linger = linger
        self.stopping = stopping
        self.batches = batches
        self._batcher: Batcher[Ref] = Batcher(max_inputs, budget())

    async def run(self, refs: Receiver[Ref]) -> None:
        with refs, self.batches:
            while True:
                try:
                    ref = await self._next(refs)
                except EndOfStream:
                    break
                if self.stopping.is_set():
                    continue  # stopping: what is not sent yet never will be
                part, i = ref
                chunk = part.chunks[i]
                self._batcher.max_tokens = self.budget()
                if (batch := self._batcher.add(chunk.input, chunk.tokens, ref)) is not None:
                    await self.batches.send(batch)
            if (batch := self._batcher.flush()) is not None:
                await self.batches.send(batch)

    async def _next(self, refs: Receiver[Ref]) -> Ref:
        """The next chunk; while none comes within `linger`, the batch so far goes out."""
        try:
            return refs.receive_nowait()
        except asyncio.QueueEmpty:
            pass
        if self._batcher.pending and self.linger is not None:
            try:
                async with asyncio.timeout(self.linger):
                    return await refs.receive()
            except TimeoutError:
                if (batch := self._batcher.flush()) is not None:
                    await self.batches.send(batch)
        return await refs.receive()
