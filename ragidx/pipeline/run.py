"""The index run: walk -> plan -> read and chunk -> batch -> embed -> commit, wired.

Each stage is a unit of its own module (`walking`, `loading`, `reading`, `batching`,
`embedding`, `committing`) with its own state and figures; this module builds them and the bounded
channels between them, runs them as tasks of one `asyncio.TaskGroup`, hands the stop
signal on, and adds their figures up into the `RunSummary`:

    roots -> Walking -plans-> Loading -loaded-> Reading (x readers) -refs-> Batching
    -batches-> Embedding (x embed_workers) -outcomes-> Committing; Walking and Reading send
    outcomes there too.

A slow stage holds the ones before it back, so memory does not grow with the corpus; a
stage's input ends when every sender of its channel has closed. Reading, decoding, chunking,
counting and hashing run in worker processes (`workers`, `--workers`), and the hash
embedder's vectors with them; stat and SQLite run in threads. One file's failure is an
event; a store failure ends the run. A dry run is the same run with a `CountingEmbedder` and
a `DryStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import os
import pickle
import socket
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragidx import read
from ragidx.chunk.tokens import BPE_ENCODINGS
from ragidx.config import IndexConfig
from ragidx.embed import Embedder, MinimalEmbedder, closing, complete
from ragidx.errors import ConfigError, RagidxError
from ragidx.events import (
    BuildingVectorIndex,
    EventSink,
    RunFinished,
    RunStarted,
    Stopping,
    WaitingForIndex,
)
from ragidx.models import FileStatus, RunSummary
from ragidx.pipeline.batcher import Batch
from ragidx.pipeline.batching import Batching
from ragidx.pipeline.cache import CacheView, Inflight, Shared
from ragidx.pipeline.channel import channel
from ragidx.pipeline.committing import GROUP_WEIGHT, Committing, Outcome, weight
from ragidx.pipeline.dry import CountingEmbedder, DryStore, prepare_dry, summarise_dry
from ragidx.pipeline.embedding import Embedding
from ragidx.pipeline.interrupt import StopSignal
from ragidx.pipeline.loading import Loaded, Loading, loaded_weight, prepare_worker, window
from ragidx.pipeline.pending import Ref
from ragidx.pipeline.planner import Read
from ragidx.pipeline.prepare import (
    check_named,
    dedupe,
    failed_under,
    fit_chunks,
    pick_tokenizer,
    prepare,
    unless_stopped,
    usable_cores,
    walk_workers,
)
from ragidx.pipeline.reading import Reading
from ragidx.pipeline.walking import Walking
from ragidx.pipeline.workers import Workers
from ragidx.store import Store, lock_path
from ragidx.store.locate import open_index, run_lock
from ragidx.walk.walker import absolute

__all__ = ["index", "run_index"]

# Files planned for reading that the walk may run ahead by: enough that most trees are walked
# in the first second, so the progress bar has its total early. A plan is about 450 bytes
# with a 60-character path: 22 MB at most.
_READ_AHEAD = 50_000
# Chunks and vectors waiting for the store, at most (about 6 KB each with 1,024 dims).
_COMMIT_WEIGHT = 2 * GROUP_WEIGHT
_BATCH_LINGER = 0.02


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
    came back. With `config.dry_run`, nothing is embedded or written. The embedder stays open:
    closing it is the caller's.
    """
    embedder = complete(embedder)
    if config.dry_run and config.db_url:
        raise ConfigError(
            "--dry-run reads a SQLite index only, not a Postgres one",
            hint="estimate against a copy indexed into SQLite, or leave out --dry-run",
        )
    stopping = (stop or StopSignal()).bind()
    if config.dry_run:
        # It writes nothing: it neither waits for the writer's lock nor keeps a writer out.
        return await _index(paths, embedder, config, on_event, retry_failed, stopping)

    def waiting(holder: str | None) -> None:
        on_event(WaitingForIndex(config.db_shown, holder))

    if config.part is not None:
        # A part of a run that holds the index's run lock (a Ray task's): it takes none.
        return await _index(paths, embedder, config, on_event, retry_failed, stopping)
    shard = str(config.shard) if config.shard else None
    lock = run_lock(config.db, shard, wait=config.wait, on_wait=waiting, give_up=stopping.is_set)
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
    redact = embedder.redact
    config = pick_tokenizer(embedder, config)
    store: Store
    if config.dry_run:
        # Asks no server (the chunk size stays), and opens the index read-only.
        store = await asyncio.to_thread(DryStore.for_run, config)
    else:
        config = await fit_chunks(embedder, config, on_event)
        store = await asyncio.to_thread(open_index, config.db)
    try:
        named = dedupe([absolute(p) for p in paths]) if isinstance(paths, list | tuple) else None
        if named is not None:
            await asyncio.to_thread(check_named, store, named)
        if isinstance(store, DryStore):
            embedder = await prepare_dry(store, embedder)
        else:
            await unless_stopped(prepare(store, embedder, config), stopping)
        roots: Iterable[Path] = named if named is not None else (absolute(p) for p in paths)
        if retry_failed:
            roots = await asyncio.to_thread(failed_under, store, named)
        skip = frozenset() if config.db_url else _own_files(config.db_path)
        workers = config.walk.workers
        if workers is None:
            workers = await asyncio.to_thread(
                walk_workers, store, named or [], config.walk.fan_out_files
            )
        walk_config = dataclasses.replace(
            config.walk,
            skip_paths=config.walk.skip_paths | skip,
            workers=workers,
            document_suffixes=config.walk.document_suffixes | read.document_suffixes(),
        )
        config = dataclasses.replace(config, walk=walk_config)
        if config.ray is not None:
            # Imported for --ray only: the driver of Ray tasks, each a part of this run.
            from ragidx.distribute.driver import RayRun

            return await RayRun(store, embedder, config, on_event, stopping).execute(roots)
        run = _Run(store, embedder, config, on_event, redact, stopping)
        return await run.execute(roots)
    finally:
        store.close()


_Job = Callable[[], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class _Stages:
    walking: Walking
    loading: Loading
    readers: list[Reading]
    batching: Batching
    embedding: Embedding
    committing: Committing
    jobs: list[_Job]
    """Each task of the run, to start in the TaskGroup."""

    @property
    def failures(self) -> int:
        tallies = (self.walking.tally, self.committing.tally)
        return sum(t.counts[FileStatus.FAILED] for t in tallies)


class _Run:
    """One run's wiring: its stages, their channels, and the summary they add up to."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        config: IndexConfig,
        on_event: EventSink,
        redact: Callable[[str], str],
        stopping: asyncio.Event,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config
        self.emit = on_event
        self.redact = redact
        self.stopping = stopping
        self.run_id = 0
        self.stages: _Stages | None = None

    async def execute(self, roots: Iterable[Path]) -> RunSummary:
        started = time.monotonic()
        self.run_id, root_list = await start_run(
            self.store, self.config, self.embedder, roots, self.emit
        )
        status = "interrupted"
        try:
            # A reset waiting for its first vectors: the walk plans as for an empty index.
            blank = self.store.resetting
            planning = Shared(
                await asyncio.to_thread(functools.partial(self.store.reader, blank=blank))
            )
            reads = Shared(await asyncio.to_thread(self.store.reader))
            workers = _workers(self.config)
            try:
                self.stages = self._build(planning, reads, workers, root_list or roots)
                await self._flow(self.stages)
            finally:
                # Worker threads may still be at them after an error: each waits its turn.
                planning.close()
                reads.close()
                if self.stages is not None:
                    self.stages.loading.cancel()
                await asyncio.to_thread(workers.close)
            if not self.stopping.is_set():
                status = "failed" if self.stages.failures else "completed"
        except BaseExceptionGroup as group:
            status = "error"
            raise primary_error(group) from None
        finally:
            summary = self._summary(time.monotonic() - started, status == "interrupted")
            await self._finish(summary, status)
        return summary

    def _build(
        self, planning: Shared, reads: Shared, workers: Workers, roots: Iterable[Path]
    ) -> _Stages:
        """The stages, and the channels between them: each task holds its own ends."""
        config, stopping, emit = self.config, self.stopping, self.emit
        e = self.embedder
        max_inputs = config.batch_inputs or e.max_inputs
        max_tokens = config.batch_tokens or e.max_tokens
        cache = CacheView(e, self.store, reads)
        inflight = Inflight()
        staging = itertools.count(1)
        given = config.batch_inputs is not None or config.batch_tokens is not None
        embedding = Embedding(
            e,
            cache,
            inflight,
            config.on_long_chunk,
            config.chunk,
            max_inputs,
            max_tokens,
            stopping,
            emit,
        )
        embedding.start(fixed_size=given)
        embedding.offload(workers)
        committing = Committing(self.store, config, inflight, self.redact, emit)
        committing.run_id = self.run_id
        committing.in_flight = lambda: walking.announced - committing.tally.total
        send_plans, plans = channel[Read](_READ_AHEAD)
        send_loaded, loaded = channel[Loaded](window(workers.size), loaded_weight)
        send_refs, refs = channel[Ref](max(max_inputs * 2, 64))
        send_batches, batches = channel[Batch[Ref]](config.embed_workers)
        send_outcomes, outcomes = channel[Outcome](_COMMIT_WEIGHT, weight)
        # A dry run sends nothing: only full batches, so its count of requests does not
        # depend on timing.
        linger = None if isinstance(e, CountingEmbedder) else _BATCH_LINGER
        # The ends made here are closed once each task has its own (`clone`).
        with (
            send_plans,
            plans,
            send_loaded,
            loaded,
            send_refs,
            refs,
            send_batches,
            batches,
            send_outcomes,
            outcomes,
        ):
            walking = Walking(config, planning, emit, stopping)
            loading = Loading(
                workers, config.chunk, cache, inflight, stopping, emit, config.parse_timeout
            )
            readers = [
                Reading(
                    config.chunk,
                    cache,
                    inflight,
                    staging,
                    stopping,
                    send_refs.clone(),
                    send_outcomes.clone(),
                )
                for _ in range(config.readers)
            ]
            batching = Batching(
                max_inputs, embedding.budget, linger, stopping, send_batches.clone()
            )
            p = functools.partial
            jobs: list[_Job] = [p(walking.run, roots, send_plans.clone(), send_outcomes.clone())]
            jobs.append(p(loading.run, plans.clone(), send_loaded.clone()))
            jobs += [p(reader.run, loaded.clone()) for reader in readers]
            jobs.append(p(batching.run, refs.clone()))
            jobs += [
                p(embedding.run, batches.clone(), send_outcomes.clone())
                for _ in range(config.embed_workers)
            ]
            jobs.append(p(committing.run, outcomes.clone()))
        return _Stages(walking, loading, readers, batching, embedding, committing, jobs)

    async def _flow(self, stages: _Stages) -> None:
        watcher = asyncio.create_task(self._on_stop(stages.embedding))
        try:
            async with asyncio.TaskGroup() as tg:
                for job in stages.jobs:
                    tg.create_task(job())
        finally:
            watcher.cancel()

    async def _on_stop(self, embedding: Embedding) -> None:
        """Once stopping is asked, requests in flight have `grace` seconds left."""
        await self.stopping.wait()
        embedding.grace.begin(self.config.grace)
        self.emit(Stopping(self.config.grace))

    def _summary(self, seconds: float, interrupted: bool) -> RunSummary:
        """The stages' figures added up."""
        summary = RunSummary(run_id=self.run_id, seconds=seconds, interrupted=interrupted)
        calls = 0
        if (stages := self.stages) is not None:
            stages.walking.tally.add_to(summary)
            stages.committing.tally.add_to(summary)
            summary.reused = sum(r.reused for r in stages.readers) + stages.embedding.reused
            summary.embedded = stages.embedding.embedded
            summary.sent_tokens = stages.embedding.sent_tokens
            calls = stages.embedding.calls
        # Requests as the client counts them: the dims probe and the last retries included.
        figures = self.embedder.stats
        summary.requests = figures.requests if figures is not None else calls
        summary.retries = figures.retries if figures is not None else 0
        summary.rate_limited = figures.rate_limited if figures is not None else 0
        if isinstance(self.embedder, CountingEmbedder):
            summarise_dry(summary, self.embedder, self.config)
        return summary

    async def _finish(self, summary: RunSummary, status: str) -> None:
        with contextlib.suppress(RagidxError):
            if status == "completed":
                self.store.complete_reset(self.run_id)  # if one still waits
            self.store.finish_run(
                self.run_id,
                status,
                summary.as_dict(),
                on_build=lambda vectors: self.emit(BuildingVectorIndex(vectors)),
            )
            if status in ("completed", "failed") and self.config.part is None:
                # What the run changed lost its directory stamps: the next run of an
                # unchanged tree reads one row per directory. (A part's are its whole run's.)
                await asyncio.to_thread(self.store.stamp_dirs)
        self.store.checkpoint()
        self.emit(RunFinished(summary))


def _workers(config: IndexConfig) -> Workers:
    """The run's worker processes, which read with the readers registered here; a thread of
    this process where a registered reader cannot be handed to another process."""
    size, registered = config.workers, read.readers()
    preload = ["ragidx.pipeline.loading"]
    if config.chunk.tokenizer in BPE_ENCODINGS:
        preload.append("bpe_openai")  # 0.4 s to import: once, in the fork server
    try:
        pickle.dumps(registered)
    except (pickle.PicklingError, TypeError, AttributeError):
        size = 0
    return Workers(
        usable_cores() if size is None else size,
        preload=preload,
        setup=prepare_worker,
        setup_args=(registered, config.parse_memory),
    )


def primary_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception that ended the run, out of the group the TaskGroup raised."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return primary_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


def _own_files(db: Path) -> frozenset[str]:
    """The SQLite index's own files, which a walk of the tree that holds them passes over."""
    name = str(absolute(db))
    own = (name + suffix for suffix in ("", "-wal", "-shm", "-journal", "-vectors"))
    return frozenset((*own, str(absolute(lock_path(db)))))


async def start_run(
    store: Store,
    config: IndexConfig,
    embedder: Embedder,
    roots: Iterable[Path],
    emit: EventSink,
) -> tuple[int, list[Path] | None]:
    """Begin a run in the store, as this worker and for its part or shard, and say so: the
    run's id, and the roots as a list where they came as one (not paths read from stdin)."""
    root_list = list(roots) if isinstance(roots, list) else None
    shown = tuple(str(p) for p in root_list) if root_list is not None else ("-",)
    shard = config.part or (str(config.shard) if config.shard else None)
    begin = functools.partial(store.begin_run, shown, worker=worker_name(), shard=shard)
    run_id = await asyncio.to_thread(begin)
    emit(RunStarted(run_id, shown, embedder.provider, embedder.model, embedder.dims))
    return run_id, root_list


def worker_name() -> str:
    """Who runs a run, as `ragidx stats` and `ragidx_progress` name it: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"
