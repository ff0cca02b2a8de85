"""Stage 2a, load: a planned file in, its chunks and their cache keys out, worked out in the
worker processes, in walk order.

In: `Read` plans. Out: each plan with the work under way for it (`Loaded`), in the order
the plans came: the readers (`ragidx.pipeline.reading`) take them from there. The output
channel's size bounds the files submitted and not yet taken, so memory stays bounded however
fast the walk; the pool takes work first in, first out, so results come in walk order.

A file larger than `LARGE_FILE` that can be read in segments is passed on with no work:
its reader reads it a segment at a time. On stop, no new file is submitted. Where worker
processes cannot start, every file is loaded in a thread of this process instead (and a
`WorkersUnavailable` event says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import multiprocessing
import resource
import signal
from collections.abc import Iterator

from ragidx import read
from ragidx.chunk.chunker import chunk_document
from ragidx.config import ChunkConfig
from ragidx.events import EventSink, WorkersUnavailable
from ragidx.models import Chunk, Document, FileInfo, FileStatus
from ragidx.pipeline.cache import CacheView, Inflight
from ragidx.pipeline.channel import EndOfStream, Receiver, Sender
from ragidx.pipeline.planner import Read
from ragidx.pipeline.workers import WorkerDied, Workers
from ragidx.read import Reader, TooLarge, read_document, reader_for
from ragidx.read.base import SNIFF_BYTES
from ragidx.read.text import LARGE_FILE
from ragidx.store.cache import embedding_key

__all__ = [
    "Loaded",
    "Loading",
    "Looked",
    "ParseTimeout",
    "Space",
    "Work",
    "load_file",
    "load_files",
    "loaded_weight",
    "prepare_worker",
    "window",
]

Space = tuple[str, str, int]
"""The vector space a cache key is in: provider, model, dims."""

Work = tuple[Document, list[Chunk], list[bytes]] | tuple[Document, None, None]
"""A file read (its text left out: nothing after the chunker needs it), its chunks and
their cache keys; no chunks when its content is the one given as known."""

Looked = tuple[Document, list[Chunk], list[bytes], set[bytes], int] | tuple[Document, None, None]
"""A file's work as a reader takes it: with the keys the cache holds (of its whole batch)
and the `Inflight` generation its lookup began at, which the reader ends once it has
claimed its chunks; or, unchanged, none of them."""

Job = tuple[FileInfo, str | None]
"""A file to load, and the content hash indexed for it under this chunking, if any."""

Loaded = tuple[Read, "asyncio.Future[Looked] | None"]
"""A plan, and its work under way (None: a large file, for its reader to read)."""

# Files go to the workers in small batches: a call costs this process about 0.2 ms of its
# own (pickling, a pipe, the pool's threads), more than chunking a small file takes.
_BATCH_FILES = 16
_BATCH_BYTES = 1024 * 1024


def loaded_weight(item: Loaded) -> int:
    """An item's weight in the channel out of this stage, in bytes: a small file's own (its
    chunks and inputs take about twice that), a large file's none (it is not read yet)."""
    task, work = item
    return 1024 + (task.info.size if work is not None else 0)


def window(workers: int) -> int:
    """The weight of files out at the workers and not yet taken by a reader: two batches
    a worker keeps each busy while the last batch's results are taken."""
    return 2 * max(workers, 1) * _BATCH_BYTES


def load_files(
    jobs: list[Job], chunk: ChunkConfig, space: Space, limit: float | None = None
) -> list[Work | Exception]:
    """`load_file` for each job: a file's failure is its own. In a worker process, `limit`
    seconds a file: past them SIGALRM ends the process (a parser stuck in C code answers
    no Python signal handler), and the run fails the file (`ParseTimeout`)."""
    timed = limit if multiprocessing.parent_process() is not None else None
    out: list[Work | Exception] = []
    for info, known in jobs:
        if timed is not None:
            signal.setitimer(signal.ITIMER_REAL, timed)
        try:
            out.append(load_file(info, chunk, space, known))
        except MemoryError:
            out.append(TooLarge("reading and chunking it needed more memory than --parse-memory"))
        except Exception as exc:
            out.append(exc)
        finally:
            if timed is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
    return out


def prepare_worker(registered: list[Reader], memory: int) -> None:
    """Runs first in each worker process: the readers of the run's process, and a cap of
    `memory` bytes on what the process may allocate beyond what it holds now. Past it an
    allocation fails: Python raises `MemoryError` (the file fails `too_large`); a parser in C
    that cannot take the failure ends the process (`parser_crashed`). Either way the
    machine does not start swapping."""
    read.restore(registered)
    held = _data_bytes()
    if held is not None:
        limit = held + memory
        _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _data_bytes() -> int | None:
    """What RLIMIT_DATA counts of this process now (heap and private mappings): Linux's
    VmData."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class ParseTimeout(Exception):
    """Reading and chunking a file took longer than the run's `parse_timeout`."""


def load_file(info: FileInfo, chunk: ChunkConfig, space: Space, known: str | None) -> Work:
    """Read, chunk and key one file. Raises what `read_document` raises. `known`: the
    content hash indexed for the file under this chunking; a file whose content is still
    that is not chunked again."""
    doc = read_document(info)
    bare = dataclasses.replace(doc, text="")
    if doc.content_hash == known:
        return bare, None, None
    chunks = chunk_document(doc, chunk)
    return bare, chunks, [embedding_key(*space, c.input) for c in chunks]


class Loading:
    """Submits planned files to the workers, in order, in small batches."""

    def __init__(
        self,
        workers: Workers,
        chunk: ChunkConfig,
        cache: CacheView,
        inflight: Inflight,
        stopping: asyncio.Event,
        emit: EventSink,
        limit: float | None = None,
    ) -> None:
        self.workers = workers
        self.cache = cache
        self.inflight = inflight
        self.chunk = chunk
        self.chunking = chunk.fingerprint
        self.space = cache.space
        self.stopping = stopping
        self.emit = emit
        self.limit = limit
        """Seconds a worker may take over one file (`IndexConfig.parse_timeout`)."""
        self._calls: set[asyncio.Future[list[Looked | Exception]]] = set()

    async def run(self, plans: Receiver[Read], out: Sender[Loaded]) -> None:
        with plans, out:
            started = False
            while True:
                try:
                    tasks = await plans.receive_many(_BATCH_FILES, _BATCH_FILES)
                except EndOfStream:
                    return
                if self.stopping.is_set():
                    continue
                if not started:  # not before a file needs reading: a no-op run starts none
                    started = True
                    if (reason := await self.workers.start()) is not None:
                        self.emit(WorkersUnavailable(reason))
                for batch in _batches(tasks):
                    for task, work in zip(batch, self._submit(batch), strict=True):
                        await out.send((task, work))

    def _submit(self, batch: list[Read]) -> list[asyncio.Future[Looked] | None]:
        """Each file's work: one call to the workers for the batch's small files."""
        small = [t for t in batch if not _large(t)]
        futures = [asyncio.get_running_loop().create_future() for _ in small]
        if small:
            jobs = [(t.info, self._known(t)) for t in small]
            call = asyncio.ensure_future(self._looked_up(jobs))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)
            call.add_done_callback(functools.partial(_settle, futures))
        each = iter(futures)
        return [None if _large(t) else next(each) for t in batch]

    def cancel(self) -> None:
        """Give up the calls still out (the run ended early)."""
        for call in list(self._calls):
            call.cancel()

    async def _looked_up(self, jobs: list[Job]) -> list[Looked | Exception]:
        """The batch's work, and one cache lookup (a thread hop) for all its chunks."""
        results = await self._load(jobs)
        chunked = [r for r in results if not isinstance(r, Exception) and r[1] is not None]
        keys = [k for r in chunked for k in r[2] or ()]
        # One generation a file: each file's reader ends its own once it has claimed.
        begun = [self.inflight.lookup_begins() for _ in chunked]
        try:
            hits = await asyncio.to_thread(self.cache.cached, keys) if keys else set()
        except BaseException:
            for generation in begun:
                self.inflight.lookup_ends(generation)
            raise
        each = iter(begun)
        out: list[Looked | Exception] = []
        for r in results:
            if isinstance(r, Exception):
                out.append(r)
            elif r[1] is None or r[2] is None:
                out.append((r[0], None, None))
            else:
                out.append((r[0], r[1], r[2], hits, next(each)))
        return out

    async def _load(self, jobs: list[Job]) -> list[Work | Exception]:
        try:
            return await self.workers.call(load_files, jobs, self.chunk, self.space, self.limit)
        except WorkerDied as exc:
            if len(jobs) == 1:
                if exc.signal == signal.SIGALRM and self.limit is not None:
                    return [ParseTimeout(f"reading and chunking took over {self.limit:g} s")]
                return [exc]
        # The batch killed a worker: which file did is found by loading each alone.
        return [(await self._load([job]))[0] for job in jobs]

    def _known(self, task: Read) -> str | None:
        rec = task.record
        if rec is not None and rec.status == FileStatus.INDEXED and rec.chunking == self.chunking:
            return rec.content_hash
        return None


def _large(task: Read) -> bool:
    """Whether a file is read a segment at a time: large, and of a kind whose text is its
    bytes decoded, by its first bytes as much as by its name (a large PDF named `.txt` is
    read whole, as a PDF)."""
    if task.info.size <= LARGE_FILE:
        return False
    try:
        with open(task.info.path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        head = None  # reading it whole will say what is wrong
    return reader_for(task.info.path, head).segmented


def _batches(tasks: list[Read]) -> Iterator[list[Read]]:
    batch: list[Read] = []
    size = 0
    for task in tasks:
        if batch and size + task.info.size > _BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(task)
        size += task.info.size
    if batch:
        yield batch


def _settle(
    futures: list[asyncio.Future[Looked]], call: asyncio.Future[list[Looked | Exception]]
) -> None:
    """Hand a batch's results (or its failure) to each file's future."""
    if call.cancelled():
        for f in futures:
            f.cancel()
        return
    error = call.exception()
    results: list[Looked | BaseException] = (
        [error] * len(futures) if error is not None else list(call.result())
    )
    for f, result in zip(futures, results, strict=True):
        if f.done():
            continue
        if isinstance(result, BaseException):
            f.set_exception(result)
        else:
            f.set_result(result)
