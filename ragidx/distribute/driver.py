"""The run `--ray` starts: walk, plan and remove here, read, embed and commit in Ray tasks.

In: the index (a Postgres one, opened and prepared by `run_index`, which holds its run lock
whole), the embedder, the config, the roots. Out: the `RunSummary` of the whole run, the
counts summed over the tasks, and the events a run emits (a `FileDone` for each file, from
the tasks' reports).

The walk and the planner run here as in any run (`Walking`): unchanged files are counted and
go nowhere; removed, skipped and failed-before-reading files are committed here (a
`Committing` of their writes alone), and the removal sweep happens once, here, after the
whole walk. The files to read go to Ray tasks in batches (`farm.Farm`), each a part of this
run (`IndexConfig.part`: no lock of its own, a run row of its own named "ray N" with its Ray
worker's host:pid, shown in `ragidx stats`).

The budget: `--rpm` and `--tpm` are the API key's, and the tasks running at once (one a CPU
of the cluster, counted when the run starts) each pace at an equal share of them; the
driver's own requests (the width probe) come before any task starts. `--concurrency` is
each task's own.

On stop (Ctrl-C), tasks in flight are cancelled, files committed stay, the run row is
finished as interrupted. A task's `RagidxError` ends the run with it (`StoreError` where the
index failed, the key refused ...); tasks in flight are cancelled then too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import pickle
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ragidx import read
from ragidx.config import IndexConfig
from ragidx.distribute.cluster import Cluster
from ragidx.distribute.farm import Farm
from ragidx.distribute.task import Job, recipe
from ragidx.embed import Embedder
from ragidx.errors import RagidxError
from ragidx.events import BuildingVectorIndex, EventSink, RunFinished
from ragidx.models import FileStatus, RunSummary
from ragidx.pipeline.cache import Inflight, Shared
from ragidx.pipeline.channel import channel
from ragidx.pipeline.committing import GROUP_WEIGHT, Committing, Outcome, weight
from ragidx.pipeline.planner import Read
from ragidx.pipeline.run import primary_error, start_run
from ragidx.pipeline.walking import Walking
from ragidx.store import Store

__all__ = ["RayRun"]

# Plans the walk may run ahead by (as in a run without Ray), and writes waiting for the store.
_READ_AHEAD = 50_000
_COMMIT_WEIGHT = 2 * GROUP_WEIGHT

_Job = Callable[[], Any]


class RayRun:
    """One `--ray` run; `execute` is `_Run.execute`'s counterpart (ragidx.pipeline.run)."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        config: IndexConfig,
        on_event: EventSink,
        stopping: asyncio.Event,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config
        self.emit = on_event
        self.stopping = stopping
        self.run_id = 0

    async def execute(self, roots: Iterable[Path]) -> RunSummary:
        assert self.config.ray is not None
        cluster = await asyncio.to_thread(Cluster.connect, self.config.ray)
        try:
            job = self._job(cluster.slots)
            reads = Shared(await asyncio.to_thread(self.store.reader))
            try:
                farm = Farm(cluster, job, reads, self.stopping, self.emit)
                return await self._execute(roots, farm)
            finally:
                reads.close()
        finally:
            await asyncio.to_thread(cluster.close)

    async def _execute(self, roots: Iterable[Path], farm: Farm) -> RunSummary:
        started = time.monotonic()
        self.run_id, root_list = await start_run(
            self.store, self.config, self.embedder, roots, self.emit
        )
        e = self.embedder
        config, emit, stopping = self.config, self.emit, self.stopping
        planning = Shared(await asyncio.to_thread(self.store.reader))
        walking = Walking(config, planning, emit, stopping)
        committing = Committing(self.store, config, Inflight(), e.redact, emit)
        committing.run_id = self.run_id
        committing.in_flight = lambda: walking.announced - committing.tally.total - farm.tally.total
        status = "interrupted"
        try:
            try:
                await self._flow(walking, farm, committing, root_list or roots)
            finally:
                planning.close()
            if not stopping.is_set():
                tallies = (walking.tally, farm.tally, committing.tally)
                failures = sum(t.counts[FileStatus.FAILED] for t in tallies)
                status = "failed" if failures else "completed"
        except BaseExceptionGroup as group:
            status = "error"
            raise primary_error(group) from None
        finally:
            summary = self._summary(walking, farm, committing, time.monotonic() - started)
            summary.interrupted = status == "interrupted"
            await self._finish(summary, status)
        return summary

    def _job(self, slots: int) -> Job:
        """What each task gets: the parts' config, the embedder's recipe, the readers."""
        config = self.config
        part = dataclasses.replace(
            config,
            ray=None,
            shard=None,  # the driver's planner took this shard's files already
            covers=(),
            workers=0,  # Ray's workers are the processes: each task reads in a thread
            walk=dataclasses.replace(config.walk, workers=0),
        )
        readers: list[Any] | None = read.readers()
        try:
            pickle.dumps(readers)
        except (pickle.PicklingError, TypeError, AttributeError):
            readers = None
        return Job(part, recipe(self.embedder, slots), readers)

    async def _flow(
        self, walking: Walking, farm: Farm, committing: Committing, roots: Iterable[Path]
    ) -> None:
        send_plans, plans = channel[Read](_READ_AHEAD)
        send_outcomes, outcomes = channel[Outcome](_COMMIT_WEIGHT, weight)
        p = functools.partial
        # The ends made here are closed once each task has its own (`clone`).
        with send_plans, plans, send_outcomes, outcomes:
            jobs: list[_Job] = [
                p(walking.run, roots, send_plans.clone(), send_outcomes.clone()),
                p(farm.run, plans.clone()),
                p(committing.run, outcomes.clone()),
            ]
        async with asyncio.TaskGroup() as tg:
            for job in jobs:
                tg.create_task(job())

    def _summary(
        self, walking: Walking, farm: Farm, committing: Committing, seconds: float
    ) -> RunSummary:
        """The stages' figures and the parts' added up, with the driver's own requests."""
        summary = RunSummary(run_id=self.run_id, seconds=seconds)
        for tally in (walking.tally, farm.tally, committing.tally):
            tally.add_to(summary)
        for part in farm.parts:
            summary.embedded += part.embedded
            summary.reused += part.reused
            summary.sent_tokens += part.sent_tokens
            summary.requests += part.requests
            summary.retries += part.retries
            summary.rate_limited += part.rate_limited
        if (figures := self.embedder.stats) is not None:
            summary.requests += figures.requests
            summary.retries += figures.retries
            summary.rate_limited += figures.rate_limited
        return summary

    async def _finish(self, summary: RunSummary, status: str) -> None:
        with contextlib.suppress(RagidxError):
            loop = asyncio.get_running_loop()

            def building(vectors: int) -> None:  # from the thread that finishes the run
                loop.call_soon_threadsafe(self.emit, BuildingVectorIndex(vectors))

            await asyncio.to_thread(
                functools.partial(self.store.finish_run, on_build=building),
                self.run_id,
                status,
                summary.as_dict(),
            )
            if status in ("completed", "failed"):
                # The parts leave the directory stamps to the run: one pass, at its end.
                await asyncio.to_thread(self.store.stamp_dirs)
        self.emit(RunFinished(summary))
