"""The index run: walk -> plan -> read and chunk -> batch -> embed -> store, with bounded queues.

Stages are tasks of one `asyncio.TaskGroup`, joined by bounded queues, so a slow stage holds
the ones before it back and memory does not grow with the corpus. Each stage signals the end
of its input with `_STOP`, one per consumer. Blocking work (stat, read, decode, chunk, SQLite)
runs in worker threads. One file's failure is an event; a store failure ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from .batcher import Batch, Batcher
from .chunker import chunk_document
from .config import IndexConfig, LongChunkPolicy
from .embed import Embedder, HttpEmbedder, validate_vectors
from .errors import EmbedError, FatalEmbedError, RagidxError, RejectedError
from .events import BatchEmbedded, EventSink, FileDiscovered, FileDone, RunFinished, RunStarted
from .models import Chunk, Document, FileStatus, RunSummary
from .planner import Done, Plan, Planner, Read, Write
from .prepare import check_named, dedupe, failed_under, learn_dims, missing
from .reader import NotText, read_document
from .refit import Refitted, refit, too_long
from .store import FileWrite, SqliteStore
from .walker import WalkItem, absolute, walk

__all__ = ["index", "run_index"]

_STOP: Final = object()
_WALK_STEP = 256
_COMMIT_GROUP = 64
_BATCH_LINGER = 0.02
# Refusals that halving a batch can pin on single inputs.
_SPLITTABLE = frozenset({"too_large", "too_long", "rejected_input"})


def _ignore(event: object) -> None:
    pass


def index(
    paths: Iterable[str | Path],
    embedder: Embedder,
    config: IndexConfig | None = None,
    on_event: EventSink = _ignore,
) -> RunSummary:
    """Index `paths` (files and directories) into `config.db_path`; blocks until done."""
    return asyncio.run(run_index(paths, embedder, config or IndexConfig(), on_event))


async def run_index(
    paths: Iterable[str | Path],
    embedder: Embedder,
    config: IndexConfig,
    on_event: EventSink = _ignore,
    *,
    retry_failed: bool = False,
) -> RunSummary:
    """Index `paths`. Paths given as a list or tuple must exist or be in the index already;
    paths from any other iterable (stdin) that do not exist are reported as failed.

    With `retry_failed`, only the files the index holds as failed are indexed again, those
    under `paths` if any are given.
    """
    store = await asyncio.to_thread(SqliteStore.open, config.db_path)
    try:
        named = dedupe([absolute(p) for p in paths]) if isinstance(paths, list | tuple) else None
        if named is not None:
            await asyncio.to_thread(check_named, store, named)
        if config.reset:
            await asyncio.to_thread(store.reset)
        chunking: dict[str, int | str] = {
            "chunk_tokens": config.chunk.chunk_tokens,
            "chunk_overlap": config.chunk.chunk_overlap,
        }
        provisional = not embedder.dims
        if provisional:
            provisional = await learn_dims(store, embedder)
        if isinstance(embedder, HttpEmbedder):
            chunking = {**chunking, "base_url": embedder.settings.base_url}
        await asyncio.to_thread(
            functools.partial(
                store.claim_manifest,
                embedder.provider,
                embedder.model,
                embedder.dims,
                chunking,
                provisional=provisional,
            )
        )
        roots: Iterable[Path] = named if named is not None else (absolute(p) for p in paths)
        if retry_failed:
            roots = await asyncio.to_thread(failed_under, store, named)
        db = str(absolute(config.db_path))
        skip = frozenset(db + suffix for suffix in ("", "-wal", "-shm", "-journal"))
        walk_config = dataclasses.replace(config.walk, skip_paths=config.walk.skip_paths | skip)
        run = _Run(store, embedder, dataclasses.replace(config, walk=walk_config), on_event)
        return await run.execute(roots)
    finally:
        store.close()


@dataclass(slots=True)
class _Pending:
    """A file whose chunks are out being embedded."""

    doc: Document
    chunks: list[Chunk]
    vectors: np.ndarray[Any, np.dtype[np.float32]]
    remaining: int
    failure: str | None = None
    refitted: dict[int, Refitted] = field(default_factory=dict)


@dataclass(slots=True)
class _Outcome:
    write: FileWrite
    tokens: int = 0


@dataclass(slots=True)
class _Counters:
    readers_left: int
    embedders_left: int


class _Run:
    def __init__(
        self,
        store: SqliteStore,
        embedder: Embedder,
        config: IndexConfig,
        on_event: EventSink,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config
        self.emit = on_event
        self.chunking = config.chunk.fingerprint
        self.summary = RunSummary()
        self.calls = 0
        readers, embedders = config.readers, config.embed_workers
        self.max_inputs = config.batch_inputs or embedder.max_inputs
        self.max_tokens = config.batch_tokens or embedder.max_tokens
        self.read_q: asyncio.Queue[Any] = asyncio.Queue(readers * 4)
        self.chunk_q: asyncio.Queue[Any] = asyncio.Queue(max(self.max_inputs * 2, 64))
        self.batch_q: asyncio.Queue[Any] = asyncio.Queue(embedders)
        self.commit_q: asyncio.Queue[Any] = asyncio.Queue(_COMMIT_GROUP * 2)
        self.left = _Counters(readers, embedders)

    async def execute(self, roots: Iterable[Path]) -> RunSummary:
        started = time.monotonic()
        root_list = list(roots) if isinstance(roots, list) else None
        shown = tuple(str(p) for p in root_list) if root_list is not None else ("-",)
        self.summary.run_id = await asyncio.to_thread(self.store.begin_run, shown)
        e = self.embedder
        self.emit(RunStarted(self.summary.run_id, shown, e.provider, e.model, e.dims))
        status = "interrupted"
        try:
            reader = await asyncio.to_thread(SqliteStore.open, self.store.path)
            try:
                await self._stages(root_list if root_list is not None else roots, reader)
            finally:
                reader.close()
            status = "failed" if self.summary.counts[FileStatus.FAILED] else "completed"
        except BaseExceptionGroup as group:
            status = "error"
            raise _primary(group) from None
        finally:
            self._count_requests()  # the dims probe and the last retries included
            self.summary.seconds = time.monotonic() - started
            self.summary.interrupted = status == "interrupted"
            with contextlib.suppress(RagidxError):
                self.store.finish_run(self.summary.run_id, status, self.summary.as_dict())
            self.emit(RunFinished(self.summary))
        return self.summary

    async def _stages(self, roots: Iterable[Path], reader: SqliteStore) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._plan(roots, Planner(reader, self.chunking)))
            for _ in range(self.config.readers):
                tg.create_task(self._read())
            tg.create_task(self._batch())
            for _ in range(self.config.embed_workers):
                tg.create_task(self._embed())
            tg.create_task(self._write())

    # -- stage 1: walk and plan --------------------------------------------------------------

    async def _plan(self, roots: Iterable[Path], planner: Planner) -> None:
        walked: list[Path] = []

        def remember(paths: Iterable[Path]) -> Iterator[Path]:
            # Directories (and vanished paths) get a sweep for removed files at the end;
            # files do not, so a long list of files on stdin is not held in memory.
            for p in paths:
                if os.path.isdir(p) or missing(p):
                    walked.append(p)
                yield p

        items = walk(remember(roots), self.config.walk)
        while step := await asyncio.to_thread(_step, items, planner):
            for plan in step:
                await self._dispatch(plan)
        for plan in await asyncio.to_thread(planner.finish, walked):
            await self._dispatch(plan)
        for _ in range(self.config.readers):
            await self.read_q.put(_STOP)

    async def _dispatch(self, plan: Plan) -> None:
        self.emit(FileDiscovered(plan.info.path if isinstance(plan, Read) else Path(plan.path)))
        if isinstance(plan, Read):
            await self.read_q.put(plan)
        elif isinstance(plan, Done):
            self._done(Path(plan.path), plan.status, plan.chunks, 0, plan.reason)
        else:
            await self.commit_q.put(_Outcome(_write_for(plan)))

    # -- stage 2: read and chunk -------------------------------------------------------------

    async def _read(self) -> None:
        while (task := await self.read_q.get()) is not _STOP:
            await self._read_one(task)
        self.left.readers_left -= 1
        if self.left.readers_left == 0:
            await self.chunk_q.put(_STOP)

    async def _read_one(self, task: Read) -> None:
        path = str(task.info.path)
        try:
            doc, chunks = await asyncio.to_thread(self._load, task)
        except NotText as exc:
            # A content skip holds while the file is unchanged: stamp it with the chunking.
            write = FileWrite(
                FileStatus.SKIPPED,
                path,
                task.info.size,
                task.info.mtime_ns,
                reason=str(exc),
                chunking=self.chunking,
            )
            await self.commit_q.put(_Outcome(write))
            return
        except OSError as exc:
            await self.commit_q.put(_Outcome(_failed(path, f"read_error: {exc.strerror or exc}")))
            return
        except Exception as exc:  # a bug on one odd file must not end the run
            reason = f"internal_error: {type(exc).__name__}: {exc}"
            await self.commit_q.put(_Outcome(_failed(path, reason)))
            return
        rec = task.record
        if (
            rec is not None
            and rec.status == FileStatus.INDEXED
            and rec.content_hash == doc.content_hash
            and rec.chunking == self.chunking
        ):
            touch = FileWrite(FileStatus.UNCHANGED, path, doc.size, doc.mtime_ns, touch_only=True)
            await self.commit_q.put(_Outcome(touch))
            return
        vectors = np.zeros((len(chunks), self.embedder.dims), dtype=np.float32)
        pending = _Pending(doc, chunks, vectors, len(chunks))
        if not chunks:
            await self.commit_q.put(self._finished(pending))
        for i, _chunk in enumerate(chunks):
            await self.chunk_q.put((pending, i))

    def _load(self, task: Read) -> tuple[Document, list[Chunk]]:
        doc = read_document(task.info)
        return doc, chunk_document(doc, self.config.chunk)

    # -- stage 3: batch ----------------------------------------------------------------------

    async def _batch(self) -> None:
        batcher: Batcher[tuple[_Pending, int]] = Batcher(self.max_inputs, self.max_tokens)
        while True:
            try:
                item = self.chunk_q.get_nowait()
            except asyncio.QueueEmpty:
                item = await self._linger(batcher)
            if item is _STOP:
                break
            pending, i = item
            chunk = pending.chunks[i]
            if (batch := batcher.add(chunk.input, chunk.tokens, item)) is not None:
                await self.batch_q.put(batch)
        if (batch := batcher.flush()) is not None:
            await self.batch_q.put(batch)
        for _ in range(self.config.embed_workers):
            await self.batch_q.put(_STOP)

    async def _linger(self, batcher: Batcher[tuple[_Pending, int]]) -> Any:
        """Wait a moment for more chunks before sending a part-full batch."""
        if batcher.pending:
            try:
                async with asyncio.timeout(_BATCH_LINGER):
                    return await self.chunk_q.get()
            except TimeoutError:
                if (batch := batcher.flush()) is not None:
                    await self.batch_q.put(batch)
        return await self.chunk_q.get()

    # -- stage 4: embed ----------------------------------------------------------------------

    async def _embed(self) -> None:
        while (batch := await self.batch_q.get()) is not _STOP:
            await self._embed_one(batch)
        self.left.embedders_left -= 1
        if self.left.embedders_left == 0:
            await self.commit_q.put(_STOP)

    async def _embed_one(self, batch: Batch[tuple[_Pending, int]]) -> None:
        started = time.monotonic()
        results = await self._embed_split(batch.texts)
        for n, (result, (pending, i)) in enumerate(zip(results, batch.refs, strict=True)):
            if too_long(result):
                policy = self.config.on_long_chunk
                results[n] = await refit(pending.chunks[i], result, policy, self._embed_split)
        self._count_requests()  # after refitting, so its requests are in the figures
        s = self.summary
        seconds = time.monotonic() - started
        self.emit(
            BatchEmbedded(len(batch), batch.tokens, seconds, s.requests, s.retries, s.rate_limited)
        )
        for result, (pending, i) in zip(results, batch.refs, strict=True):
            if isinstance(result, list):
                pending.refitted[i] = result
            elif isinstance(result, EmbedError):
                pending.failure = pending.failure or f"{result.kind}: {result.message}"
            else:
                pending.vectors[i] = result
            pending.remaining -= 1
            if pending.remaining == 0:
                await self.commit_q.put(self._finished(pending))

    def _count_requests(self) -> None:
        """Requests as the HTTP client counts them (retries included), else embed calls."""
        if isinstance(self.embedder, HttpEmbedder):
            stats = self.embedder.stats
            self.summary.requests = stats.requests
            self.summary.retries = stats.retries
            self.summary.rate_limited = stats.rate_limited
        else:
            self.summary.requests = self.calls

    async def _embed_split(self, texts: list[str]) -> list[Any]:
        """One vector or one error per text. A batch refused for its size, or for one bad
        input, is halved until the refusal is pinned on single inputs; the rest is stored."""
        self.calls += 1
        try:
            raw = await self.embedder.embed(texts)
            return list(validate_vectors(raw, len(texts), self.embedder.dims))
        except FatalEmbedError:
            raise
        except RejectedError as exc:
            if len(texts) == 1 or exc.kind not in _SPLITTABLE:
                return [exc] * len(texts)
            half = len(texts) // 2
            return [*await self._embed_split(texts[:half]), *await self._embed_split(texts[half:])]
        except EmbedError as exc:
            return [exc] * len(texts)

    def _finished(self, pending: _Pending) -> _Outcome:
        doc = pending.doc
        if pending.failure is not None:
            return _Outcome(_failed(str(doc.path), pending.failure, doc.encoding))
        chunks, vectors, note = _refitted(pending, self.config.on_long_chunk)
        write = FileWrite(
            FileStatus.INDEXED,
            str(doc.path),
            doc.size,
            doc.mtime_ns,
            content_hash=doc.content_hash,
            reason=note,
            encoding=doc.encoding,
            format=doc.format,
            chunking=self.chunking,
            chunks=chunks,
            vectors=vectors,
        )
        return _Outcome(write, sum(c.tokens for c in chunks))

    # -- stage 5: store ----------------------------------------------------------------------

    async def _write(self) -> None:
        stopping = False
        while not stopping:
            group = [await self.commit_q.get()]
            while len(group) < _COMMIT_GROUP and not self.commit_q.empty():
                group.append(self.commit_q.get_nowait())
            if group[-1] is _STOP:
                group.pop()
                stopping = True
            if not group:
                continue
            await self._commit(group)

    async def _commit(self, group: list[_Outcome]) -> None:
        writes = [o.write for o in group]
        commit = asyncio.ensure_future(
            asyncio.to_thread(self.store.commit, writes, self.summary.run_id)
        )
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

    def _report(self, group: list[_Outcome]) -> None:
        for o in group:
            w = o.write
            status = FileStatus.UNCHANGED if w.touch_only else w.status
            self._done(Path(w.path), status, len(w.chunks), o.tokens, w.reason, w.encoding)

    def _done(
        self,
        path: Path,
        status: FileStatus,
        chunks: int,
        tokens: int,
        reason: str | None,
        encoding: str | None = None,
    ) -> None:
        self.summary.counts[status] += 1
        if status is FileStatus.INDEXED:
            self.summary.chunks += chunks
            self.summary.tokens += tokens
        self.emit(FileDone(path, status, chunks, tokens, reason, encoding))


def _refitted(
    pending: _Pending, policy: LongChunkPolicy
) -> tuple[list[Chunk], np.ndarray[Any, np.dtype[np.float32]], str | None]:
    """The file's chunks and vectors with refitted chunks in place, renumbered, and a note."""
    if not pending.refitted:
        return pending.chunks, pending.vectors, None
    chunks: list[Chunk] = []
    vectors: list[Any] = []
    for i, chunk in enumerate(pending.chunks):
        for piece, vector in pending.refitted.get(i, [(chunk, pending.vectors[i])]):
            chunks.append(dataclasses.replace(piece, ordinal=len(chunks)))
            vectors.append(vector)
    n = len(pending.refitted)
    done = "split to fit" if policy is LongChunkPolicy.SPLIT else "truncated to fit"
    note = f"{n} chunk{'s' if n > 1 else ''} too long for the model, {done}"
    return chunks, np.vstack(vectors).astype(np.float32), note


def _step(items: Iterator[WalkItem], planner: Planner) -> list[Plan]:
    """Advance the walk by a slice and plan it; runs in a worker thread."""
    while chunk := list(itertools.islice(items, _WALK_STEP)):
        if plans := planner.plan(chunk):
            return plans
    return []


def _write_for(plan: Write) -> FileWrite:
    if plan.status is FileStatus.REMOVED:
        return FileWrite(FileStatus.REMOVED, plan.path, reason=plan.reason)
    if plan.status is FileStatus.FAILED:
        return _failed(plan.path, plan.reason)
    return FileWrite(plan.status, plan.path, plan.size, plan.mtime_ns, reason=plan.reason)


def _failed(path: str, reason: str, encoding: str | None = None) -> FileWrite:
    return FileWrite(FileStatus.FAILED, path, reason=reason, encoding=encoding)


def _primary(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception that ended the run, out of the group the TaskGroup raised."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _primary(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]
