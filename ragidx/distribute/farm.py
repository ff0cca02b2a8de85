"""The driver's stage that stands for reading, embedding and committing: batches of files to
read go to Ray tasks (`task.index_part`), and what each task reports comes back as the
files' outcomes.

In: `Read` plans from the walk. Out: a `FileDone` for each file (counted in the stage's own
`Tally`), and each part's `RunSummary` (`parts`) for the run's figures. Batches are up to
`BATCH_FILES` files or `BATCH_BYTES` bytes, formed when a slot is free, so a fast walk makes
full batches; at most two batches a slot are sent at once (Ray queues the second, so a slot
never waits on the driver), one task a CPU runs.

A task whose worker died is run again by Ray (`MAX_RETRIES`); one that still failed leaves its
files to the next run: each is reported as the index holds it where a try committed it, else
failed (not stored: the next run reads it). A task's
`RagidxError` (the index or the key refused) ends the run, as it ends a run without Ray, and
so does an error Ray raises from a task's code. On stop, every task in flight is cancelled
(its worker ended): what the tasks committed stays, the rest is the next run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from ragidx.distribute.cluster import Cluster
from ragidx.distribute.task import Job, PartResult, index_part
from ragidx.errors import RagidxError
from ragidx.events import EventSink
from ragidx.models import FileStatus, RunSummary
from ragidx.pipeline.cache import Shared
from ragidx.pipeline.channel import EndOfStream, Receiver
from ragidx.pipeline.planner import Read
from ragidx.pipeline.tally import Tally
from ragidx.store import Stamp, Store

__all__ = ["BATCH_BYTES", "BATCH_FILES", "MAX_RETRIES", "Farm"]

BATCH_FILES = 32
BATCH_BYTES = 32 * 1024**2
MAX_RETRIES = 3
"""Runs of a task again after its worker died (Ray's `max_retries`)."""
_LOST = "its Ray task failed ({}); the next run indexes it"


class Farm:
    def __init__(
        self, cluster: Cluster, job: Job, reads: Shared, stopping: asyncio.Event, emit: EventSink
    ) -> None:
        self.cluster = cluster
        self.reads = reads
        """A read connection, to see what a lost task committed."""
        self.job = job
        self.stopping = stopping
        self.tally = Tally(emit)
        self.parts: list[RunSummary] = []
        self.sent = 0
        """Tasks sent."""
        self._refs: dict[Any, list[str]] = {}
        self._labels = itertools.count(1)
        ray = cluster.ray
        self._remote: Any = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(
            index_part
        )

    async def run(self, plans: Receiver[Read]) -> None:
        """Send batches until the walk ends (or a stop), and wait for every task sent."""
        slots = asyncio.Semaphore(2 * self.cluster.slots)
        watcher = asyncio.create_task(self._cancel_on_stop())
        try:
            with plans:
                async with asyncio.TaskGroup() as tg:
                    while True:
                        await slots.acquire()
                        batch = await _batch(plans)
                        if not batch:
                            break
                        if self.stopping.is_set():
                            slots.release()
                            continue  # drained, so the walk is never held up
                        tg.create_task(self._send(batch, slots.release))
        finally:
            watcher.cancel()

    async def _send(self, batch: list[Read], done: Callable[[], None]) -> None:
        paths = [plan.info.path for plan in batch]
        label = f"ray {next(self._labels)}"
        ref = self._remote.options(name=f"ragidx {label}").remote(paths, self.job, label)
        self.sent += 1
        self._refs[ref] = paths
        try:
            result: PartResult = await asyncio.wrap_future(ref.future())
        except asyncio.CancelledError:
            self._cancel(ref)  # the run is ending on an error: the task goes too
            raise
        except Exception as exc:
            await self._lost(batch, exc)
            return
        finally:
            self._refs.pop(ref, None)
            done()
        self._report(result)

    def _report(self, result: PartResult) -> None:
        for d in result.done:
            self.tally.done(
                d.path, d.status, d.chunks, d.tokens, d.reason, d.encoding, unit=d.unit,
                pages=d.pages,
            )  # fmt: skip
        if result.summary is not None:
            self.parts.append(result.summary)
        if result.error is not None:
            message, hint = result.error
            raise RagidxError(message, hint=hint)

    async def _lost(self, batch: list[Read], exc: Exception) -> None:
        """A task that did not come back: stopped, its worker gone past its retries, or an
        error in its code (which ends the run). A file its tries committed is reported as
        the index holds it; the others failed, not stored: the next run takes them."""
        ray = self.cluster.ray
        if isinstance(exc, ray.exceptions.TaskCancelledError) and self.stopping.is_set():
            return  # what it committed stays; the next run finds the rest
        if isinstance(exc, ray.exceptions.RayTaskError):
            cause = exc.cause if isinstance(exc.cause, Exception) else exc
            raise RagidxError(
                f"a Ray task failed: {type(cause).__name__}: {cause}",
                hint="files already committed stay in the index; the next run picks up the rest",
            ) from None
        if self.stopping.is_set():
            return
        reason = _LOST.format(type(exc).__name__)
        stamps = await asyncio.to_thread(self.reads.use, _stamps, self.reads.store, batch)
        for plan, stamp in zip(batch, stamps, strict=True):
            info = plan.info
            if stamp is not None and (stamp.size, stamp.mtime_ns) == (info.size, info.mtime_ns):
                status = FileStatus(stamp.status)
                self.tally.done(info.path, status, stamp.chunks, 0, stamp.reason)
            else:
                self.tally.done(info.path, FileStatus.FAILED, 0, 0, reason)

    async def _cancel_on_stop(self) -> None:
        await self.stopping.wait()
        for ref in list(self._refs):
            self._cancel(ref)

    def _cancel(self, ref: Any) -> None:
        # A task already over cannot be cancelled, and need not be.
        with contextlib.suppress(Exception):
            self.cluster.ray.cancel(ref, force=True)


def _stamps(store: Store, batch: list[Read]) -> list[Stamp | None]:
    return [store.stamp(plan.info.path) for plan in batch]


async def _batch(plans: Receiver[Read]) -> list[Read]:
    """The next batch: what is waiting, up to a batch's files and bytes, at least one file
    (waited for); empty once the walk is over."""
    try:
        batch = [await plans.receive()]
    except EndOfStream:
        return []
    size = batch[0].info.size
    while len(batch) < BATCH_FILES and size < BATCH_BYTES:
        try:
            plan = plans.receive_nowait()
        except (asyncio.QueueEmpty, EndOfStream):
            break
        batch.append(plan)
        size += plan.info.size
    return batch
