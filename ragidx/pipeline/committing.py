"""Stage 5, commit: every file's outcome into the store, a group per transaction, then
reported.

In: `Outcome`s from every stage before it, on one channel whose senders are the walk, the
readers and the embedders: a file's ready `FileWrite` (removed, skipped, failed, unchanged),
the vectors an embedder received (`Embeddings`, sent before any file that uses them), a
`PartDone` when every chunk of a part has its vector or its error, and a `ReadDone` when the
reader is through a large file. Out: the store's transactions, and a `FileDone` for each
file once the store holds it (counted in the stage's own `Tally`).

This stage is the only writer. It puts each file together (`_Files`): a small file is one
part and commits with it; a large file's parts are staged in document order as they finish,
and the file commits once it is read and every part is staged. Groups are as many writes as
are waiting, up to `_GROUP` or about half the channel's weight, one transaction each; a file
is all old or all new.

On stop it goes on until every sender has closed: what came back is committed. A store
failure ends the run; a cancelled commit's thread finishes the transaction anyway, and what
it committed is reported before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from ragidx.config import IndexConfig, LongChunkPolicy
from ragidx.errors import StoreError
from ragidx.events import EventSink
from ragidx.models import FileStatus
from ragidx.pipeline.cache import Inflight
from ragidx.pipeline.channel import EndOfStream, Receiver
from ragidx.pipeline.pending import Part, PendingFile
from ragidx.pipeline.tally import Tally
from ragidx.store import Embeddings, FileWrite, Staged, Store
from ragidx.store import Write as StoreWrite

__all__ = ["GROUP_WEIGHT", "Committing", "Outcome", "PartDone", "ReadDone", "failed", "weight"]

# Writes committed in one transaction, at most.
_GROUP = 64
GROUP_WEIGHT = 2048
HEARTBEAT_SECONDS = 2.0
"""How often at most a run records its files in flight (`ragidx stats`)."""
"""About the chunks and vectors committed in one transaction (half the channel's bound)."""


@dataclass(frozen=True, slots=True)
class PartDone:
    """Every chunk of `part` has its vector, or its error (then `part.file.failure` says)."""

    part: Part


@dataclass(frozen=True, slots=True)
class ReadDone:
    """The reader is through a large file: `file.doc` or `file.verdict` is set."""

    file: PendingFile


Outcome = FileWrite | Embeddings | PartDone | ReadDone


def weight(outcome: Outcome) -> int:
    """About the chunks and vectors an outcome holds: the commit channel's measure."""
    if isinstance(outcome, Embeddings):
        return len(outcome.keys)
    if isinstance(outcome, PartDone):
        return outcome.part.size + 1
    if isinstance(outcome, FileWrite):
        return len(outcome.chunks) + 1
    return 1


def failed(path: str, reason: str, encoding: str | None = None) -> FileWrite:
    return FileWrite(FileStatus.FAILED, path, reason=reason, encoding=encoding)


class Committing:
    def __init__(
        self,
        store: Store,
        config: IndexConfig,
        inflight: Inflight,
        redact: Callable[[str], str],
        emit: EventSink,
    ) -> None:
        self.store = store
        self.inflight = inflight
        self.redact = redact
        self.tally = Tally(emit)
        self.run_id = 0
        self.in_flight: Callable[[], int] = lambda: 0
        """Files between the walk and their commit, for the run's heartbeat."""
        self._files = _Files(config.chunk.fingerprint, config.on_long_chunk)
        self._beat = time.monotonic()

    async def run(self, outcomes: Receiver[Outcome]) -> None:
        """Commit until every sender is closed and nothing is left."""
        with outcomes:
            while True:
                try:
                    group = await outcomes.receive_many(_GROUP, GROUP_WEIGHT)
                except EndOfStream:
                    return
                writes = [w for outcome in group for w in self._files.writes(outcome)]
                if writes:
                    await self._commit(writes)

    async def _commit(self, group: list[StoreWrite]) -> None:
        for w in group:
            if isinstance(w, FileWrite) and w.reason:
                w.reason = self.redact(w.reason)
        commit = asyncio.ensure_future(asyncio.to_thread(self.store.commit, group, self.run_id))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            # The thread finishes the transaction anyway: wait for it, so that what was
            # committed is reported, and the connection is free for the run's last write.
            await asyncio.wait([commit])
            if not commit.cancelled() and commit.exception() is None:
                self._report(group)
            raise
        self._report(group)
        if time.monotonic() - self._beat >= HEARTBEAT_SECONDS:
            self._beat = time.monotonic()
            # Progress others watch; a run does not fail for want of showing it.
            with contextlib.suppress(StoreError):
                await asyncio.to_thread(self.store.heartbeat, self.run_id, max(self.in_flight(), 0))

    def _report(self, group: list[StoreWrite]) -> None:
        for w in group:
            if isinstance(w, Embeddings):
                self.inflight.committed(w.keys)
            elif isinstance(w, FileWrite):
                status = FileStatus.UNCHANGED if w.touch_only else w.status
                chunks, tokens = w.chunk_count, w.token_count
                self.tally.done(
                    w.path, status, chunks, tokens, w.reason, w.encoding, unit=w.unit, pages=w.pages
                )


class _Files:
    """Files put together from their parts: what each outcome adds to the store's writes."""

    def __init__(self, chunking: str, policy: LongChunkPolicy) -> None:
        self.chunking = chunking
        self.policy = policy

    def writes(self, outcome: Outcome) -> list[StoreWrite]:
        if isinstance(outcome, PartDone):
            return self._part_done(outcome.part)
        if isinstance(outcome, ReadDone):
            return self._finish(outcome.file)
        return [outcome]

    def _part_done(self, part: Part) -> list[StoreWrite]:
        """A small file is ready; a large one stages its finished parts in order."""
        file = part.file
        if file.stage is None:
            file.open_parts -= 1
            file.finished = True
            return [self._file_write(file, part)]
        out: list[StoreWrite] = []
        file.done_parts[part.seq] = part
        while (ready := file.done_parts.pop(file.next_seq, None)) is not None:
            file.next_seq += 1
            if file.failure is None:
                pieces = ready.pieces(file.chunks)
                file.chunks += len(pieces)
                file.tokens += sum(c.tokens for c, _ in pieces)
                file.refitted += len(ready.refitted)
                chunks, keys = [c for c, _ in pieces], [k for _, k in pieces]
                out.append(Staged(file.stage, file.path, chunks, keys))
            # Only once its part is staged: the file's last write must come after it.
            file.open_parts -= 1
            file.room.set()
        return out + self._finish(file)

    def _finish(self, file: PendingFile) -> list[StoreWrite]:
        """A large file's last write, once it is read and every part is staged."""
        if file.complete and not file.finished:
            file.finished = True
            return [self._file_write(file)]
        return []

    def _file_write(self, file: PendingFile, part: Part | None = None) -> FileWrite:
        """The write that commits a file: with its one part, or its staged parts."""
        if file.failure is not None:
            write = dataclasses.replace(failed(file.path, file.failure), stage=file.stage)
            if part is not None:  # a small file: the vectors that came back are held
                write.held = part.pieces(0)
            return write
        if file.verdict is not None:
            return dataclasses.replace(file.verdict, stage=file.stage)
        doc = file.doc
        assert doc is not None
        write = FileWrite(
            FileStatus.INDEXED,
            file.path,
            doc.size,
            doc.mtime_ns,
            content_hash=doc.content_hash,
            encoding=doc.encoding,
            format=doc.format,
            unit=doc.unit,
            pages=len(doc.pages) if doc.unit else None,
            chunking=self.chunking,
            stage=file.stage,
            staged_chunks=file.chunks,
            staged_tokens=file.tokens,
        )
        refitted = file.refitted
        if part is not None:
            pieces = part.pieces(0)
            write.chunks, write.keys = [c for c, _ in pieces], [k for _, k in pieces]
            refitted = len(part.refitted)
        write.reason = _refit_note(refitted, self.policy)
        return write


def _refit_note(refitted: int, policy: LongChunkPolicy) -> str | None:
    if not refitted:
        return None
    done = "split to fit" if policy is LongChunkPolicy.SPLIT else "truncated to fit"
    return f"{refitted} chunk{'s' if refitted > 1 else ''} too long for the model, {done}"
