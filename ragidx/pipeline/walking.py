"""Stage 1, walk and plan: the paths given, walked and held against the index.

In: the roots (paths given, or a stream of them from stdin). Out: a `Read` plan for every
file to read, to the readers; the outcome of every file that needs no reading (removed,
skipped, failed before it was opened) to the commit stage. Files the index holds as they
are are reported here and counted in the stage's own `Tally`; they go nowhere.

The walk and the planner's queries run in a worker thread on a connection of their own
(`Shared`). On stop, no more of the walk is planned, and the sweep for removed files is
left out: a walk cut short is no proof that a file is gone. A failure of the walk or of the
index ends the run.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from ragidx.config import IndexConfig
from ragidx.events import EventSink, FileDiscovered, FilesUnchanged, WalkFinished
from ragidx.models import FileStatus
from ragidx.pipeline.cache import Shared
from ragidx.pipeline.channel import Sender
from ragidx.pipeline.committing import Outcome, failed
from ragidx.pipeline.covered import Covered
from ragidx.pipeline.planner import Done, Plan, Planner, Read, Unchanged, Write
from ragidx.pipeline.prepare import inside, missing
from ragidx.pipeline.tally import Tally
from ragidx.store import FileWrite
from ragidx.walk.walker import WalkItem, absolute, walk_listings

__all__ = ["Walking"]

# Files a worker thread walks and plans at a time, about.
_WALK_STEP = 2048


class Walking:
    def __init__(
        self,
        config: IndexConfig,
        planning: Shared,
        emit: EventSink,
        stopping: asyncio.Event,
    ) -> None:
        self.config = config
        self.planning = planning
        self.emit = emit
        self.stopping = stopping
        self.tally = Tally(emit)
        self.announced = 0
        """Files sent on to be read or written (each with a `FileDiscovered`)."""

    async def run(
        self, roots: Iterable[Path], reads: Sender[Read], outcomes: Sender[Outcome]
    ) -> None:
        """Walk `roots` to the end (or to a stop), then close both ends."""
        covers = self.config.covers
        covered = Covered(str(absolute(p)) for p in covers) if covers else None
        planner = Planner(
            self.planning.store, self.config.chunk.fingerprint, covered, self.config.shard
        )
        with reads, outcomes:
            try:
                await self._walk(roots, planner, reads, outcomes)
            finally:
                if covered is not None:
                    covered.close()

    async def _walk(
        self,
        roots: Iterable[Path],
        planner: Planner,
        reads: Sender[Read],
        outcomes: Sender[Outcome],
    ) -> None:
        walked: list[Path] = []
        listings = walk_listings(_remember(roots, walked), self.config.walk)
        found = 0
        use = self.planning.use
        while not self.stopping.is_set() and (
            plans := await asyncio.to_thread(use, _step, listings, planner)
        ):
            found += _files_in(plans)
            await self._dispatch(plans, reads, outcomes)
        if not self.stopping.is_set():
            # The sweep for removed files only after a whole walk: a cut-short one is no proof.
            plans = await asyncio.to_thread(use, planner.finish, walked)
            found += _files_in(plans)
            await self._dispatch(plans, reads, outcomes)
        if not self.stopping.is_set():
            self.emit(WalkFinished(found))

    async def _dispatch(
        self, plans: list[Plan], reads: Sender[Read], outcomes: Sender[Outcome]
    ) -> None:
        for plan in plans:
            if self.stopping.is_set():
                return
            if isinstance(plan, Unchanged):
                self.tally.counts[FileStatus.UNCHANGED] += len(plan.paths)
                self.emit(FilesUnchanged(plan.paths, plan.chunks, plan.reasons))
            elif isinstance(plan, Done):
                # Found and done at once: one event, not two.
                self.tally.done(
                    plan.path, plan.status, plan.chunks, 0, plan.reason, announced=False
                )
            elif isinstance(plan, Read):
                self.emit(FileDiscovered(plan.info.path))
                self.announced += 1
                await reads.send(plan)
            else:
                self.emit(FileDiscovered(plan.path))
                self.announced += 1
                await outcomes.send(_write_for(plan))


def _remember(paths: Iterable[Path], walked: list[Path]) -> Iterator[Path]:
    """The roots, as the walk takes them; directories (and vanished paths) are noted in
    `walked` for a sweep for removed files at the end. Files are not, so a long list of
    files on stdin is not held in memory. A path inside a directory given before it is that
    directory's walk's to find, as `dedupe` has it for a list (`find docs | ragidx index -`
    names both)."""
    given: set[str] = set()
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
        return failed(plan.path, plan.reason)
    return FileWrite(plan.status, plan.path, plan.size, plan.mtime_ns, reason=plan.reason)
