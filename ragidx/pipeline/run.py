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
import stat
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from ragidx.chunk.chunker import Chunker, chunk_document
from ragidx.chunk.tokens import estimate_tokens
from ragidx.config import MIN_CHUNK_TOKENS, ChunkConfig, IndexConfig, LongChunkPolicy
from ragidx.embed import Embedder, MinimalEmbedder, closing, complete, validate_vectors
from ragidx.embed.base import Vectors, is_vector, stack
from ragidx.errors import (
    EmbedError,
    FatalEmbedError,
    Interrupted,
    RagidxError,
    RejectedError,
    StoreError,
    TransientError,
)
from ragidx.events import (
    BatchEmbedded,
    ChunkLimit,
    EventSink,
    FileDiscovered,
    FileDone,
    FilesUnchanged,
    RunFinished,
    RunStarted,
    Stopping,
    WaitingForIndex,
    WalkFinished,
)
from ragidx.models import Chunk, Document, FileStatus, RunSummary
from ragidx.pipeline.batcher import Batch, Batcher, merge, slices
from ragidx.pipeline.covered import Covered
from ragidx.pipeline.estimate import estimate
from ragidx.pipeline.interrupt import StopSignal
from ragidx.pipeline.pending import Inflight, Part, PendingFile, Piece, rebase
from ragidx.pipeline.planner import Done, Plan, Planner, Read, Unchanged, Write
from ragidx.pipeline.prepare import check_named, dedupe, failed_under, inside, learn_dims, missing
from ragidx.pipeline.refit import refit, too_long
from ragidx.pipeline.weighted import WeightedQueue
from ragidx.read.text import (
    LARGE_FILE,
    Changed,
    NotText,
    SegmentReader,
    content_hash,
    read_document,
)
from ragidx.store import (
    Embeddings,
    FileWrite,
    SqliteStore,
    Staged,
    embedding_key,
    lock_path,
    writer_lock,
)
from ragidx.store import Write as StoreWrite
from ragidx.walk.walker import WalkItem, absolute, walk_listings

__all__ = ["index", "run_index"]

T = TypeVar("T")

_STOP: Final = object()
_WALK_STEP = 2048
# A walk fans out to helper processes where the index holds this many files under its paths:
# 100,000 unchanged files re-run in 0.46 s with two helpers, 0.58 s without (2 cores).
_FAN_OUT_FILES = 50_000
_MAX_WALK_WORKERS = 4
# Files planned for reading that the walk may run ahead by: enough that most trees are walked
# in the first second, so the progress bar has its total early. A plan is about 450 bytes
# with a 60-character path: 22 MB at most.
_READ_AHEAD = 50_000
_COMMIT_GROUP = 64
# Chunks and vectors waiting for the store, at most (about 6 KB each with 1,024 dims).
_COMMIT_WEIGHT = 4096
_BATCH_LINGER = 0.02
# Parts of one large file read but not yet staged: a slow answer holds the reader back.
_OPEN_PARTS = 4
# Refusals that halving a batch can pin on single inputs, and the timeout of a batch too
# large for the server to answer in time (`embed` leaves it to be split, not sent again).
_SPLITTABLE = frozenset({"too_large", "too_long", "rejected_input", "timeout"})


def _ignore(event: object) -> None:
    pass


def index(
    paths: Iterable[str | Path],
    embedder: MinimalEmbedder,
    config: IndexConfig | None = None,
    on_event: EventSink = _ignore,
) -> RunSummary:
    """Index `paths` (files and directories) into `config.db_path`; blocks until done. The
    embedder is closed (`aclose`) before this returns: its connections belong to the event
    loop this call runs, which ends with it."""
    work = run_index(paths, embedder, config or IndexConfig(), on_event)
    return asyncio.run(closing(embedder, work))


async def run_index(
    paths: Iterable[str | Path],
    embedder: MinimalEmbedder,
    config: IndexConfig,
    on_event: EventSink = _ignore,
    *,
    retry_failed: bool = False,
    stop: StopSignal | None = None,
) -> RunSummary:
    """Index `paths`. Paths given as a list or tuple must exist or be in the index already;
    paths from any other iterable (stdin) that do not exist are reported as failed.

    With `retry_failed`, only the files the index holds as failed are indexed again, those
    under `paths` if any are given. `stop.request()` ends the run early, losing nothing that
    came back. With `config.dry_run`, nothing is embedded or written.
    """
    embedder = complete(embedder)
    stopping = (stop or StopSignal()).bind()
    if config.dry_run:
        return await _index(paths, embedder, config, on_event, retry_failed, stopping)

    def waiting(holder: str | None) -> None:
        on_event(WaitingForIndex(config.db_path, holder))

    lock = writer_lock(config.db_path, wait=config.wait, on_wait=waiting, give_up=stopping.is_set)
    async with lock:
        return await _index(paths, embedder, config, on_event, retry_failed, stopping)


async def _index(
    paths: Iterable[str | Path],
    embedder: Embedder,
    config: IndexConfig,
    on_event: EventSink,
    retry_failed: bool,
    stopping: asyncio.Event,
) -> RunSummary:
    config = await _fit_chunks(embedder, config, on_event)
    store = await asyncio.to_thread(_open_store, config)
    try:
        named = dedupe([absolute(p) for p in paths]) if isinstance(paths, list | tuple) else None
        if named is not None:
            await asyncio.to_thread(check_named, store, named)
        if config.dry_run:
            embedder.dims = embedder.dims or await _known_dims(store, embedder)
            await asyncio.to_thread(
                store.check_manifest,
                embedder.provider,
                embedder.model,
                embedder.dims,
                embedder.binding,
            )
        else:
            await _unless_stopped(_prepare(store, embedder, config), stopping)
        roots: Iterable[Path] = named if named is not None else (absolute(p) for p in paths)
        if retry_failed:
            roots = await asyncio.to_thread(failed_under, store, named)
        db = str(absolute(config.db_path))
        own = (db + suffix for suffix in ("", "-wal", "-shm", "-journal"))
        skip = frozenset((*own, str(absolute(lock_path(config.db_path)))))
        workers = config.walk.workers
        if workers is None:
            workers = await asyncio.to_thread(_walk_workers, store, named or [])
        walk_config = dataclasses.replace(
            config.walk, skip_paths=config.walk.skip_paths | skip, workers=workers
        )
        run = _Run(store, embedder, dataclasses.replace(config, walk=walk_config), on_event)
        return await run.execute(roots, stopping)
    finally:
        store.close()


async def _fit_chunks(embedder: Embedder, config: IndexConfig, on_event: EventSink) -> IndexConfig:
    """Chunks no longer than the model reads, where the server says (TEI's `/info`), unless
    the chunk size was given: then it stays, with a warning if it is more. Some servers cut
    what is longer without a word (Infinity), others refuse it. A dry run asks no server."""
    limit = await embedder.input_limit() if not config.dry_run else None
    if limit is None:
        return config
    chunk = config.chunk
    # The model's special tokens ([CLS], [SEP]) count against its limit.
    fits = max(limit - 2, MIN_CHUNK_TOKENS)
    if config.fit_chunks and chunk.chunk_tokens > fits:
        on_event(ChunkLimit(limit, chunk.chunk_tokens, fitted=True))
        overlap = min(chunk.chunk_overlap, fits // 8)
        fitted = ChunkConfig(chunk_tokens=fits, chunk_overlap=overlap)
        return dataclasses.replace(config, chunk=fitted)
    if not config.fit_chunks and chunk.chunk_tokens > limit:
        on_event(ChunkLimit(limit, chunk.chunk_tokens, fitted=False))
    return config


def _open_store(config: IndexConfig) -> SqliteStore:
    if not config.dry_run:
        return SqliteStore.open(config.db_path)
    if config.reset or not os.path.exists(config.db_path):
        return SqliteStore.open(Path(":memory:"))  # a dry run creates nothing
    return SqliteStore.open(config.db_path, create=False, upgrade=False)


async def _unless_stopped(work: Awaitable[None], stopping: asyncio.Event) -> None:
    """`work`, unless stopping is asked first: then `Interrupted` (the dims probe can take
    as long as its retries)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise Interrupted("stopped before indexing began")
    task.result()


async def _known_dims(store: SqliteStore, embedder: Embedder) -> int:
    """A dry run's dims: from the manifest if it names this model; never by asking."""
    manifest = await asyncio.to_thread(store.manifest)
    same = (manifest.get("provider"), manifest.get("model")) == (embedder.provider, embedder.model)
    return int(manifest["dims"]) if same and "dims" in manifest else 0


async def _prepare(store: SqliteStore, embedder: Embedder, config: IndexConfig) -> None:
    """Settle the vector space (a reset waits for the run's first vectors, see
    `SqliteStore.reset`), and clear what a killed run left staged."""
    if config.reset:
        store.reset(defer=True)
    settings: dict[str, int | str] = {
        "chunk_tokens": config.chunk.chunk_tokens,
        "chunk_overlap": config.chunk.chunk_overlap,
    }
    if not embedder.dims:
        await learn_dims(store, embedder)
    if embedder.server is not None:
        settings["base_url"] = embedder.server.base_url
    await asyncio.to_thread(
        functools.partial(
            store.claim_manifest,
            embedder.provider,
            embedder.model,
            embedder.dims,
            settings,
            binding=embedder.binding,
        )
    )
    await asyncio.to_thread(store.drop_staged)


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
        # Reasons quote servers and exceptions: redacted before they are stored or reported.
        self.redact = embedder.redact
        self.chunking = config.chunk.fingerprint
        self.summary = RunSummary(dry_run=config.dry_run)
        self.calls = 0
        self.stages = itertools.count(1)
        self.inflight = Inflight()
        self.deadlines: set[asyncio.Timeout] = set()
        self.grace_at: float | None = None
        self.stopping = asyncio.Event()
        self.cache: _Shared | None = None
        self.planning: _Shared | None = None
        readers, embedders = config.readers, config.embed_workers
        self.max_inputs = config.batch_inputs or embedder.max_inputs
        self.max_tokens = config.batch_tokens or embedder.max_tokens
        # Batch sizes follow the server's latency (`embed.adaptive`), under the provider's
        # limits or the size given; a dry run counts full batches, the same every time.
        self.adaptive = embedder.adaptive if not config.dry_run else None
        if self.adaptive is not None:
            given = config.batch_inputs is not None or config.batch_tokens is not None
            self.adaptive.bound(self.max_tokens, fixed=given)
        self.read_q: asyncio.Queue[Any] = asyncio.Queue(_READ_AHEAD)
        self.chunk_q: asyncio.Queue[Any] = asyncio.Queue(max(self.max_inputs * 2, 64))
        self.batch_q: asyncio.Queue[Any] = asyncio.Queue(embedders)
        self.commit_q: WeightedQueue[Any] = WeightedQueue(_COMMIT_WEIGHT)
        self.left = _Counters(readers, embedders)

    async def execute(self, roots: Iterable[Path], stopping: asyncio.Event) -> RunSummary:
        started = time.monotonic()
        root_list = list(roots) if isinstance(roots, list) else None
        shown = tuple(str(p) for p in root_list) if root_list is not None else ("-",)
        if not self.config.dry_run:
            self.summary.run_id = await asyncio.to_thread(self.store.begin_run, shown)
        e = self.embedder
        self.emit(RunStarted(self.summary.run_id, shown, e.provider, e.model, e.dims))
        self.stopping = stopping
        watcher = asyncio.create_task(self._on_stop())
        status = "interrupted"
        try:
            # A reset waiting for its first vectors: the walk plans as for an empty index.
            blank = self.store.resetting
            self.planning = _Shared(await asyncio.to_thread(self._connect, blank))
            self.cache = _Shared(await asyncio.to_thread(self._connect))
            try:
                await self._stages(root_list if root_list is not None else roots)
            finally:
                # Worker threads may still be at them after an error: each waits its turn.
                self.planning.close()
                self.cache.close()
            if not self.stopping.is_set():
                status = "failed" if self.summary.counts[FileStatus.FAILED] else "completed"
        except BaseExceptionGroup as group:
            status = "error"
            raise _primary(group) from None
        finally:
            watcher.cancel()
            await self._finish(started, status)
        return self.summary

    def _connect(self, blank: bool = False) -> SqliteStore:
        """Another connection to the index, for reads beside the writer's (`blank`: to an
        empty one)."""
        path = Path(":memory:") if blank else self.store.path
        if self.config.dry_run and str(path) != ":memory:":
            return SqliteStore.open(path, create=False, upgrade=False)
        return SqliteStore.open(path)

    async def _finish(self, started: float, status: str) -> None:
        self._count_requests()  # the dims probe and the last retries included
        self.summary.seconds = time.monotonic() - started
        self.summary.interrupted = status == "interrupted"
        if self.config.dry_run:
            s = self.summary
            s.estimate = estimate(s.requests, s.sent_tokens, self.config.budget)
        else:
            with contextlib.suppress(RagidxError):
                if status == "completed":
                    self.store.complete_reset(self.summary.run_id)  # if one still waits
                self.store.finish_run(self.summary.run_id, status, self.summary.as_dict())
                if status in ("completed", "failed"):
                    # What the run changed lost its directory stamps: the next run of an
                    # unchanged tree reads one row per directory.
                    await asyncio.to_thread(self.store.stamp_dirs)
            self.store.checkpoint()
        self.emit(RunFinished(self.summary))

    async def _on_stop(self) -> None:
        """Once stopping is asked, requests in flight have `grace` seconds left."""
        await self.stopping.wait()
        grace = self.config.grace
        self.grace_at = asyncio.get_running_loop().time() + grace
        for deadline in self.deadlines:
            deadline.reschedule(self.grace_at)
        self.emit(Stopping(grace))

    async def _stages(self, roots: Iterable[Path]) -> None:
        assert self.planning is not None
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._plan(roots))
            for _ in range(self.config.readers):
                tg.create_task(self._read())
            tg.create_task(self._batch())
            for _ in range(self.config.embed_workers):
                tg.create_task(self._embed())
            tg.create_task(self._write())

    # -- stage 1: walk and plan --------------------------------------------------------------

    async def _plan(self, roots: Iterable[Path]) -> None:
        covers = self.config.covers
        covered = Covered(str(absolute(p)) for p in covers) if covers else None
        assert self.planning is not None
        try:
            await self._walk_and_plan(roots, Planner(self.planning.store, self.chunking, covered))
        finally:
            if covered is not None:
                covered.close()
        for _ in range(self.config.readers):
            await self.read_q.put(_STOP)

    async def _walk_and_plan(self, roots: Iterable[Path], planner: Planner) -> None:
        walked: list[Path] = []
        given: set[str] = set()

        def remember(paths: Iterable[Path]) -> Iterator[Path]:
            # Directories (and vanished paths) get a sweep for removed files at the end;
            # files do not, so a long list of files on stdin is not held in memory. A path
            # inside a directory given before it is that directory's walk's to find, as
            # `dedupe` has it for a list (`find docs | ragidx index -` names both).
            for p in paths:
                if given and inside(str(p), given):
                    continue
                try:
                    is_dir = stat.S_ISDIR(os.stat(p).st_mode)
                except OSError:
                    is_dir = False
                    if missing(p):
                        walked.append(p)
                if is_dir:
                    given.add(str(p))
                    walked.append(p)
                yield p

        listings = walk_listings(remember(roots), self.config.walk)
        plans: list[Plan] = []
        shared = self.planning
        assert shared is not None
        found = 0
        while not self.stopping.is_set() and (
            plans := await asyncio.to_thread(shared.use, _step, listings, planner)
        ):
            found += _files_in(plans)
            await self._dispatch_all(plans)
        if not self.stopping.is_set():
            # The sweep for removed files only after a whole walk: a cut-short one is no proof.
            plans = await asyncio.to_thread(shared.use, planner.finish, walked)
            found += _files_in(plans)
            await self._dispatch_all(plans)
        if not self.stopping.is_set():
            self.emit(WalkFinished(found))

    async def _dispatch_all(self, plans: list[Plan]) -> None:
        for plan in plans:
            if self.stopping.is_set():
                return
            if isinstance(plan, Unchanged):
                self.summary.counts[FileStatus.UNCHANGED] += len(plan.paths)
                self.emit(FilesUnchanged(plan.paths, plan.chunks, plan.reasons))
            elif isinstance(plan, Done):
                # Found and done at once: one event, not two.
                self._done(plan.path, plan.status, plan.chunks, 0, plan.reason, announced=False)
            else:
                await self._dispatch(plan)

    async def _dispatch(self, plan: Read | Write) -> None:
        self.emit(FileDiscovered(plan.info.path if isinstance(plan, Read) else plan.path))
        if isinstance(plan, Read):
            await self.read_q.put(plan)
        else:
            await self.commit_q.put(_write_for(plan))

    # -- stage 2: read and chunk -------------------------------------------------------------

    async def _read(self) -> None:
        while (task := await self.read_q.get()) is not _STOP:
            if not self.stopping.is_set():
                await self._read_one(task)
        self.left.readers_left -= 1
        if self.left.readers_left == 0:
            await self.chunk_q.put(_STOP)

    async def _read_one(self, task: Read) -> None:
        suffix = os.path.splitext(task.info.path)[1].lower()
        if task.info.size > LARGE_FILE and suffix not in _WHOLE_ONLY:
            await self._read_large(task)
            return
        since = self.inflight.lookup_begins()
        try:
            doc, chunks, keys, hits = await asyncio.to_thread(self._load, task)
        except Exception as exc:
            await self.commit_q.put(self._unread(task, exc))
            return
        else:
            if self._unchanged(task, doc.content_hash):
                touch = FileWrite(
                    FileStatus.UNCHANGED, str(doc.path), doc.size, doc.mtime_ns, touch_only=True
                )
                await self.commit_q.put(touch)
                return
            pending = PendingFile(str(doc.path), doc, open_parts=1)
            await self._dispatch_part(Part(pending, 0, chunks, keys), hits, since)
        finally:
            self.inflight.lookup_ends(since)

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
        if isinstance(exc, Changed):
            return _failed(path, f"changed_while_reading: {exc}")
        if isinstance(exc, OSError):
            return _failed(path, f"read_error: {exc.strerror or exc}")
        # A bug on one odd file must not end the run.
        return _failed(path, f"internal_error: {type(exc).__name__}: {exc}")

    def _may_be_unchanged(self, task: Read) -> bool:
        """Indexed under this chunking: the content hash decides."""
        rec = task.record
        return (
            rec is not None and rec.status == FileStatus.INDEXED and rec.chunking == self.chunking
        )

    def _unchanged(self, task: Read, digest: str) -> bool:
        rec = task.record
        return self._may_be_unchanged(task) and rec is not None and rec.content_hash == digest

    def _load(self, task: Read) -> tuple[Document, list[Chunk], list[bytes], set[bytes]]:
        doc = read_document(task.info)
        chunks = chunk_document(doc, self.config.chunk)
        keys = [self._key(c.input) for c in chunks]
        return doc, chunks, keys, self._cached(keys)

    def _key(self, text: str) -> bytes:
        e = self.embedder
        return embedding_key(e.provider, e.model, e.dims, text)

    def _cached(self, keys: list[bytes]) -> set[bytes]:
        assert self.cache is not None
        if self.store.resetting:
            return set()  # the old cache goes with the reset: it answers nothing of this run
        return self.cache.use(self.cache.store.cached, keys)

    async def _read_large(self, task: Read) -> None:
        """Read, chunk and send a large file a segment at a time; stage its parts."""
        info = task.info
        # Hashing a large file is a read of its own: only when it may turn out unchanged.
        if self._may_be_unchanged(task) and self._unchanged(
            task, await asyncio.to_thread(content_hash, info.path)
        ):
            touch = FileWrite(
                FileStatus.UNCHANGED, info.path, info.size, info.mtime_ns, touch_only=True
            )
            await self.commit_q.put(touch)
            return
        reader = SegmentReader(Path(info.path))
        segments, chunker = iter(reader), Chunker(reader.format, self.config.chunk)
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
        await self._maybe_finish(pending)

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
        since = self.inflight.lookup_begins()
        try:
            step = await asyncio.to_thread(self._segment, segments, chunker)
            if step is None:
                return False
            chunks, keys, hits = step
            pending.open_parts += 1
            await self._dispatch_part(Part(pending, seq, chunks, keys), hits, since)
            return True
        finally:
            self.inflight.lookup_ends(since)

    def _segment(
        self, segments: Iterator[str], chunker: Chunker
    ) -> tuple[list[Chunk], list[bytes], set[bytes]] | None:
        text = next(segments, None)
        if text is None:
            return None
        chunks = chunker.feed(text)
        keys = [self._key(c.input) for c in chunks]
        return chunks, keys, self._cached(keys)

    async def _dispatch_part(self, part: Part, hits: set[bytes], since: int) -> None:
        """Send the part's chunks that neither the cache nor a request in flight answers."""
        send = []
        for i, key in enumerate(part.keys):
            claim = "have" if key in hits else self.inflight.claim(key, part, i, since)
            if claim == "have":
                self.summary.reused += 1
            elif claim == "send":
                send.append(i)
        if part.remaining == 0:
            await self._part_done(part)
        for i in send:
            await self.chunk_q.put((part, i))

    # -- stage 3: batch ----------------------------------------------------------------------

    async def _batch(self) -> None:
        batcher: Batcher[tuple[Part, int]] = Batcher(self.max_inputs, self.max_tokens)
        while True:
            try:
                item = self.chunk_q.get_nowait()
            except asyncio.QueueEmpty:
                item = await self._linger(batcher)
            if item is _STOP:
                break
            if self.stopping.is_set():
                continue  # stopping: what is not sent yet never will be
            part, i = item
            chunk = part.chunks[i]
            batcher.max_tokens = self._batch_tokens()
            if (batch := batcher.add(chunk.input, chunk.tokens, item)) is not None:
                await self.batch_q.put(batch)
        if (batch := batcher.flush()) is not None:
            await self.batch_q.put(batch)
        for _ in range(self.config.embed_workers):
            await self.batch_q.put(_STOP)

    async def _linger(self, batcher: Batcher[tuple[Part, int]]) -> Any:
        """Wait a moment for more chunks before sending a part-full batch (a dry run sends
        nothing, so its count of requests does not depend on timing)."""
        if batcher.pending and not self.config.dry_run:
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
            if not self.stopping.is_set():
                await self._embed_one(self._coalesce(batch))
        self.left.embedders_left -= 1
        if self.left.embedders_left == 0:
            await self.commit_q.put(_STOP, 0)

    def _batch_tokens(self) -> int:
        return self.max_tokens if self.adaptive is None else self.adaptive.budget

    def _coalesce(self, batch: Batch[tuple[Part, int]]) -> Batch[tuple[Part, int]]:
        """The batch, with those queued behind it while they fit: batches made before the
        size grew go out as one. (Without a size to follow, batches are as they were made.)"""
        if self.adaptive is None:
            return batch
        budget = self.adaptive.budget
        while batch.tokens < budget and len(batch) < self.max_inputs:
            try:
                more = self.batch_q.get_nowait()
            except asyncio.QueueEmpty:
                break
            fits = more is not _STOP and batch.tokens + more.tokens <= budget
            if not (fits and len(batch) + len(more) <= self.max_inputs):
                self.batch_q.put_nowait(more)  # room: one was just taken
                break
            batch = merge(batch, more)
        return batch

    async def _embed_one(self, batch: Batch[tuple[Part, int]]) -> None:
        started = time.monotonic()
        if self.config.dry_run:
            self.calls += 1
            results: list[Any] = [None] * len(batch)
        else:
            try:
                results = await self._embed_within_grace(batch)
            except TimeoutError:
                return  # stopping, and the grace period is over: these files wait for next time
        self._count_requests()  # after refitting, so its requests are in the figures
        s = self.summary
        s.sent_tokens += batch.tokens
        seconds = time.monotonic() - started
        self.emit(
            BatchEmbedded(len(batch), batch.tokens, seconds, s.requests, s.retries, s.rate_limited)
        )
        received = self._received(batch, results)
        if received.keys:
            # Cached before any file that uses them.
            await self.commit_q.put(received, len(received.keys))
        for result, (part, i) in zip(results, batch.refs, strict=True):
            # A refitted chunk's own key has no vector: only its pieces' keys do.
            cached = result is None or is_vector(result)
            waiters = self.inflight.settle(part.keys[i], received=cached)
            for n, (waiter, j) in enumerate(waiters):
                self._settle(waiter, j, result, part.chunks[i])
                if n and not isinstance(result, EmbedError):
                    self.summary.reused += 1  # it waited for the sender's answer
                waiter.remaining -= 1
                if waiter.remaining == 0:
                    await self._part_done(waiter)

    async def _embed_within_grace(self, batch: Batch[tuple[Part, int]]) -> list[Any]:
        """Embed and refit; once stopping is asked, this gets the grace period to finish."""
        async with asyncio.timeout(self.grace_at) as deadline:
            self.deadlines.add(deadline)
            try:
                tokens = [part.chunks[i].tokens for part, i in batch.refs]
                results = await self._embed_split(batch.texts, tokens)
                for n, (result, (part, i)) in enumerate(zip(results, batch.refs, strict=True)):
                    if too_long(result):
                        policy = self.config.on_long_chunk
                        results[n] = await refit(part.chunks[i], result, policy, self._embed_refit)
                return results
            finally:
                self.deadlines.discard(deadline)

    async def _embed_refit(self, texts: list[str]) -> list[Any]:
        """Embed a refitted chunk's pieces, but not those the cache holds (None for them)."""
        keys = [self._key(t) for t in texts]
        have = await asyncio.to_thread(self._cached, keys)
        have |= {k for k in keys if k in self.inflight.received}
        send = [t for t, k in zip(texts, keys, strict=True) if k not in have]
        sizes = [estimate_tokens(t) for t in send]
        answers = iter(await self._embed_split(send, sizes) if send else [])
        return [None if k in have else next(answers) for k in keys]

    def _received(self, batch: Batch[tuple[Part, int]], results: list[Any]) -> Embeddings:
        """The vectors that came back, refitted pieces' included, keyed for the cache."""
        keys: list[bytes] = []
        vectors: list[Vectors] = []
        for n, (result, (part, i)) in enumerate(zip(results, batch.refs, strict=True)):
            if isinstance(result, list):
                pieces: list[Piece] = []
                for piece, vector in result:
                    pieces.append((piece, self._key(piece.input)))
                    if vector is None:  # in the cache already
                        self.summary.reused += 1
                        continue
                    keys.append(pieces[-1][1])
                    vectors.append(vector)
                results[n] = pieces
            elif is_vector(result):
                keys.append(part.keys[i])
                vectors.append(result)
        self.summary.embedded += len(keys)
        return Embeddings(keys, stack(vectors))

    def _settle(self, part: Part, i: int, result: Any, origin: Chunk) -> None:
        if isinstance(result, list):
            part.refitted[i] = rebase(result, origin, part.chunks[i])
        elif isinstance(result, EmbedError):
            file = part.file
            file.failure = file.failure or f"{result.kind}: {result.message}"

    def _count_requests(self) -> None:
        """Requests as the HTTP client counts them (retries included), else embed calls."""
        stats = self.embedder.stats
        if stats is not None and not self.config.dry_run:
            self.summary.requests = stats.requests
            self.summary.retries = stats.retries
            self.summary.rate_limited = stats.rate_limited
        else:
            self.summary.requests = self.calls

    async def _embed_split(self, texts: list[str], tokens: list[int]) -> list[Any]:
        """One vector or one error per text, sent in batches the current size allows.

        A batch refused for its size or for one bad input is halved until the refusal is
        pinned on single inputs; the rest is stored. A batch that timed out is halved
        likewise (its size is what the server could not do in time) and sent again.
        """
        budget = self._batch_tokens()
        if len(texts) > 1 and sum(tokens) > budget:
            results: list[Any] = []
            for a, b in slices(tokens, budget):
                results += await self._embed_batch(texts[a:b], tokens[a:b])
            return results
        return await self._embed_batch(texts, tokens)

    async def _embed_batch(self, texts: list[str], tokens: list[int]) -> list[Any]:
        self.calls += 1
        try:
            raw = await self.embedder.embed(texts)
            return list(validate_vectors(raw, len(texts), self.embedder.dims))
        except FatalEmbedError:
            raise
        except (RejectedError, TransientError) as exc:
            if len(texts) == 1 or exc.kind not in _SPLITTABLE:
                return [exc] * len(texts)
            half = len(texts) // 2
            first = await self._embed_split(texts[:half], tokens[:half])
            return [*first, *await self._embed_split(texts[half:], tokens[half:])]
        except EmbedError as exc:
            return [exc] * len(texts)

    # -- finishing files ---------------------------------------------------------------------

    async def _part_done(self, part: Part) -> None:
        """A part has every vector: a small file is ready; a large one stages it in order."""
        file = part.file
        if file.stage is None:
            file.open_parts -= 1
            file.finished = True
            write = self._file_write(file, part)
            await self.commit_q.put(write, len(write.chunks) + 1)
            return
        file.done_parts[part.seq] = part
        while (ready := file.done_parts.pop(file.next_seq, None)) is not None:
            file.next_seq += 1
            if file.failure is None:
                pieces = ready.pieces(file.chunks)
                file.chunks += len(pieces)
                file.tokens += sum(c.tokens for c, _ in pieces)
                file.refitted += len(ready.refitted)
                chunks, keys = [c for c, _ in pieces], [k for _, k in pieces]
                await self.commit_q.put(Staged(file.stage, file.path, chunks, keys), len(chunks))
            # Only once its part is queued: the file's last write must come after it.
            file.open_parts -= 1
            file.room.set()
        await self._maybe_finish(file)

    async def _maybe_finish(self, file: PendingFile) -> None:
        """Queue a large file's last write once it is read and every part is staged."""
        if file.complete and not file.finished:
            file.finished = True
            await self.commit_q.put(self._file_write(file))

    def _file_write(self, file: PendingFile, part: Part | None = None) -> FileWrite:
        """The write that commits a file: with its one part, or its staged parts."""
        if file.failure is not None:
            failed = dataclasses.replace(_failed(file.path, file.failure), stage=file.stage)
            if part is not None:  # a small file: the vectors that came back are held
                failed.held = part.pieces(0)
            return failed
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
        write.reason = _refit_note(refitted, self.config.on_long_chunk)
        return write

    # -- stage 5: store ----------------------------------------------------------------------

    async def _write(self) -> None:
        stopping = False
        while not stopping:
            group = await self.commit_q.get_many(_COMMIT_GROUP, _COMMIT_WEIGHT // 2)
            if group[-1] is _STOP:
                group.pop()
                stopping = True
            if not group:
                continue
            for w in group:
                if isinstance(w, FileWrite) and w.reason:
                    w.reason = self.redact(w.reason)
            if self.config.dry_run:
                self._report(group)
            else:
                await self._commit(group)

    async def _commit(self, group: list[StoreWrite]) -> None:
        commit = asyncio.ensure_future(
            asyncio.to_thread(self.store.commit, group, self.summary.run_id)
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

    def _report(self, group: list[StoreWrite]) -> None:
        for w in group:
            if isinstance(w, Embeddings):
                self.inflight.committed(w.keys)
            elif isinstance(w, FileWrite):
                status = FileStatus.UNCHANGED if w.touch_only else w.status
                chunks, tokens = w.chunk_count, w.token_count
                self._done(w.path, status, chunks, tokens, w.reason, w.encoding)

    def _done(
        self,
        path: str,
        status: FileStatus,
        chunks: int,
        tokens: int,
        reason: str | None,
        encoding: str | None = None,
        *,
        announced: bool = True,
    ) -> None:
        self.summary.counts[status] += 1
        if status is FileStatus.INDEXED:
            self.summary.chunks += chunks
            self.summary.tokens += tokens
        self.emit(FileDone(path, status, chunks, tokens, reason, encoding, announced))


# HTML is reduced to text as a whole; other formats can be read in segments.
_WHOLE_ONLY = frozenset({".html", ".htm", ".xhtml"})


def _refit_note(refitted: int, policy: LongChunkPolicy) -> str | None:
    if not refitted:
        return None
    done = "split to fit" if policy is LongChunkPolicy.SPLIT else "truncated to fit"
    return f"{refitted} chunk{'s' if refitted > 1 else ''} too long for the model, {done}"


class _Shared:
    """A connection worker threads take turns at; closed only between turns, since closing
    one that a thread is using can crash the interpreter."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._closed = False

    def use(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._closed:
                raise asyncio.CancelledError  # the run is over; the caller's result is moot
            return fn(*args)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.store.close()


def _walk_workers(store: SqliteStore, roots: list[Path]) -> int:
    """Helper processes for the walk: one a core (up to 4) where the index already holds
    enough files under the directories given for the helpers' start (about 50 ms) to pay."""
    cores = min(_usable_cores(), _MAX_WALK_WORKERS)
    if cores < 2:
        return 0
    held = 0
    for root in roots:
        held += store.count_under(str(root), _FAN_OUT_FILES - held)
        if held >= _FAN_OUT_FILES:
            return cores
    return 0


def _usable_cores() -> int:
    # The cores this process may run on (a container's share), where the system says.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _step(listings: Iterator[list[WalkItem]], planner: Planner) -> list[Plan]:
    """Advance the walk by a directory or more and plan it; runs in a worker thread."""
    batch: list[list[WalkItem]] = []
    size = 0
    for listing in listings:
        batch.append(listing)
        size += len(listing)
        if size >= _WALK_STEP:
            if plans := planner.plan(batch):
                return plans
            batch, size = [], 0
    return planner.plan(batch) if batch else []


def _files_in(plans: list[Plan]) -> int:
    """Files the plans will report, each once."""
    return sum(len(p.paths) if isinstance(p, Unchanged) else 1 for p in plans)


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
