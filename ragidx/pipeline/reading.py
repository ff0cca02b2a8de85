"""Stage 2b, read and chunk: a loaded file in, its chunks to embed out.

In: plans with their work under way in the worker processes (`ragidx.pipeline.loading`).
Out: each chunk that neither the cache nor a request in flight answers
(`Ref`: its part and its place), to the batcher; to the commit stage, the outcome of a file
that needs no embedding (unchanged content, not text, unreadable), a `PartDone` for a part
whose every chunk is answered already, and a `ReadDone` at the end of a large file.

A file up to `LARGE_FILE` is read, chunked and looked up in the cache by the load stage (in
a worker process, then one thread hop for its batch); here its chunks are claimed. A larger
one is read a segment at a time (`SegmentReader`), in a thread, one `Part` a segment, with at
most `_OPEN_PARTS` parts out at once, so a slow answer holds the reader back rather than
memory growing; the commit stage stages its parts in order.

One file's failure (unreadable, not text, changed while read, a bug on an odd file, a worker
that died of it) is that file's outcome; a failure of the index (`StoreError`) ends the run.
On stop, a reader takes no new file, and a large file is left after its current part: what
was staged is cleared at the next run's start.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

from ragidx.chunk.chunker import Chunker
from ragidx.config import ChunkConfig
from ragidx.errors import StoreError
from ragidx.models import Chunk, FileStatus
from ragidx.pipeline.cache import CacheView, Inflight
from ragidx.pipeline.channel import Receiver, Sender
from ragidx.pipeline.committing import Outcome, PartDone, ReadDone, failed
from ragidx.pipeline.loading import Loaded, Looked, ParseTimeout
from ragidx.pipeline.pending import Part, PendingFile, Ref
from ragidx.pipeline.planner import Read
from ragidx.pipeline.workers import WorkerDied
from ragidx.read import SegmentReader, Unreadable, content_hash
from ragidx.read.text import Changed, NotText
from ragidx.store import FileWrite

__all__ = ["Reading"]

# Parts of one large file read but not yet staged: a slow answer holds the reader back.
_OPEN_PARTS = 4

_Loaded = tuple[list[Chunk], list[bytes], set[bytes]]
"""A file's or a segment's chunks, their keys, and the keys the cache holds."""


class Reading:
    """One reader; a run has `config.readers` of them, each with its own ends."""

    def __init__(
        self,
        chunk: ChunkConfig,
        cache: CacheView,
        inflight: Inflight,
        stages: Iterator[int],
        stopping: asyncio.Event,
        refs: Sender[Ref],
        outcomes: Sender[Outcome],
    ) -> None:
        self.chunk = chunk
        self.chunking = chunk.fingerprint
        self.cache = cache
        self.inflight = inflight
        self.stages = stages
        """Numbers for large files' staging, shared by the run's readers."""
        self.stopping = stopping
        self.refs = refs
        self.outcomes = outcomes
        self.reused = 0
        """Chunks the cache, or a request of this run, answered without sending them."""

    async def run(self, loaded: Receiver[Loaded]) -> None:
        """Take loaded files until they end; then close this reader's ends."""
        with loaded, self.refs, self.outcomes:
            async for task, work in loaded:
                if self.stopping.is_set():
                    self._drop(work)
                elif work is None:
                    await self._read_large(task)
                else:
                    await self._read(task, work)

    async def _read(self, task: Read, work: asyncio.Future[Looked]) -> None:
        try:
            looked = await work
        except Exception as exc:
            await self.outcomes.send(self._unread(task, exc))
            return
        doc = looked[0]
        if looked[1] is None:
            await self.outcomes.send(_touch(str(doc.path), doc.size, doc.mtime_ns))
            return
        _, chunks, keys, hits, since = looked
        try:
            if self._unchanged(task, doc.content_hash):
                await self.outcomes.send(_touch(str(doc.path), doc.size, doc.mtime_ns))
                return
            pending = PendingFile(str(doc.path), doc, open_parts=1)
            await self._dispatch(Part(pending, 0, chunks, keys), hits, since)
        finally:
            self.inflight.lookup_ends(since)

    def _keyed(self, chunks: list[Chunk]) -> _Loaded:
        keys = [self.cache.key(c.input) for c in chunks]
        return chunks, keys, self.cache.cached(keys)

    def _drop(self, work: asyncio.Future[Looked] | None) -> None:
        """Let go of work the run no longer wants (it is stopping)."""
        if work is None:
            return
        work.cancel()
        # A result already here is taken (an error, so that it is not reported as never
        # retrieved), and the lookup it began is ended.
        if work.done() and not work.cancelled() and work.exception() is None:
            looked = work.result()
            if looked[1] is not None:
                self.inflight.lookup_ends(looked[4])

    def _unread(self, task: Read, exc: Exception) -> FileWrite:
        """The write for a file that could not be read as text."""
        if isinstance(exc, StoreError):
            raise exc  # the index (its cache, read beside the file) failed: not this file
        path = task.info.path
        if isinstance(exc, NotText):
            # A content skip holds while the file is unchanged: stamp it with the chunking.
            info = task.info
            return FileWrite(
                FileStatus.SKIPPED,
                path,
                info.size,
                info.mtime_ns,
                reason=str(exc),
                chunking=self.chunking,
            )
        if isinstance(exc, Unreadable):
            return failed(path, f"{exc.reason}: {exc}")
        if isinstance(exc, Changed):
            return failed(path, f"changed_while_reading: {exc}")
        if isinstance(exc, ParseTimeout):
            return failed(path, f"parse_timeout: {exc}")
        if isinstance(exc, WorkerDied):
            return failed(path, f"parser_crashed: {exc}")
        if isinstance(exc, OSError):
            return failed(path, f"read_error: {exc.strerror or exc}")
        # A bug on one odd file must not end the run.
        return failed(path, f"internal_error: {type(exc).__name__}: {exc}")

    def _may_be_unchanged(self, task: Read) -> bool:
        """Indexed under this chunking: the content hash decides."""
        rec = task.record
        return (
            rec is not None and rec.status == FileStatus.INDEXED and rec.chunking == self.chunking
        )

    def _unchanged(self, task: Read, digest: str) -> bool:
        rec = task.record
        return self._may_be_unchanged(task) and rec is not None and rec.content_hash == digest

    async def _dispatch(self, part: Part, hits: set[bytes], since: int) -> None:
        """Send the part's chunks that neither the cache nor a request in flight answers."""
        send = []
        for i, key in enumerate(part.keys):
            claim = "have" if key in hits else self.inflight.claim(key, part, i, since)
            if claim == "have":
                self.reused += 1
            elif claim == "send":
                send.append(i)
        if part.remaining == 0:
            await self.outcomes.send(PartDone(part))
        for i in send:
            await self.refs.send((part, i))

    # -- large files ---------------------------------------------------------------------

    async def _read_large(self, task: Read) -> None:
        """Read, chunk and send a large file a segment at a time; its parts are staged."""
        info = task.info
        # Hashing a large file is a read of its own: only when it may turn out unchanged.
        if self._may_be_unchanged(task) and self._unchanged(
            task, await asyncio.to_thread(content_hash, info.path)
        ):
            await self.outcomes.send(_touch(info.path, info.size, info.mtime_ns))
            return
        reader = SegmentReader(Path(info.path))
        segments, chunker = iter(reader), Chunker(reader.format, self.chunk)
        pending = PendingFile(info.path, stage=next(self.stages), reading=True)
        try:
            for seq in itertools.count():
                await self._room(pending)
                if not await self._next_part(pending, seq, segments, chunker):
                    break
                if self.stopping.is_set():
                    return  # what was staged goes at the next run's start
            pending.doc = reader.document()
        except Exception as exc:
            pending.verdict = self._unread(task, exc)
        pending.reading = False
        await self.outcomes.send(ReadDone(pending))

    async def _room(self, pending: PendingFile) -> None:
        """Wait while the file has too many parts out (a slow answer holds up later parts,
        which wait to be staged in order), unless the run is stopping."""
        while pending.open_parts >= _OPEN_PARTS and not self.stopping.is_set():
            pending.room.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (pending.room, self.stopping)]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    async def _next_part(
        self, pending: PendingFile, seq: int, segments: Iterator[str], chunker: Chunker
    ) -> bool:
        """Read, chunk and send the next segment as part `seq`; False at the end."""
        since = self.inflight.lookup_begins()
        try:
            step = await asyncio.to_thread(self._segment, segments, chunker)
            if step is None:
                return False
            chunks, keys, hits = step
            pending.open_parts += 1
            await self._dispatch(Part(pending, seq, chunks, keys), hits, since)
            return True
        finally:
            self.inflight.lookup_ends(since)

    def _segment(self, segments: Iterator[str], chunker: Chunker) -> _Loaded | None:
        text = next(segments, None)
        return None if text is None else self._keyed(chunker.feed(text))


def _touch(path: str, size: int, mtime_ns: int) -> FileWrite:
    """The write for a file whose content is as indexed: only its stamp changes."""
    return FileWrite(FileStatus.UNCHANGED, path, size, mtime_ns, touch_only=True)
