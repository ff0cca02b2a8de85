"""One Ray task: a batch of files the driver planned for reading, indexed into the Postgres
index as a part of the driver's run.

In: the files' absolute paths, a `Job` (the part's `IndexConfig`, how to build its own
embedder, the readers the driver registered) and a label ("ray 3"). The task runs
`run_index` on the paths as a part (`IndexConfig.part`: no run lock, which the driver
holds; no sweep, a list of files is never swept; no directory stamps): each file is read,
chunked, embedded with the task's own HTTP client, and committed on its own, so a task run
again (Ray retries a task whose worker died) finds the files it committed unchanged. A file
that vanished since the driver planned it is reported failed, as a path from stdin is.

Out: a `PartResult`: the part's summary and each file's outcome, which the driver counts and
reports. A `RagidxError` that ends the part (the index or the server's key refused) comes
back in `PartResult.error` rather than raised: not every error class survives pickling.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field

from ragidx import read
from ragidx.config import IndexConfig
from ragidx.embed import Embedder, MinimalEmbedder, closing
from ragidx.errors import ConfigError, RagidxError
from ragidx.events import FileDone, FilesUnchanged
from ragidx.models import FileStatus, RunSummary
from ragidx.read.base import Reader

__all__ = ["Job", "PartResult", "index_part", "recipe"]


@dataclass(frozen=True, slots=True)
class Job:
    """What every task of a run gets: picklable, built once by the driver."""

    config: IndexConfig
    """The parts' settings (no `ray`, no shard, no walk helpers or worker processes)."""
    embedder: Callable[[], MinimalEmbedder]
    """Builds the task's own embedder (and HTTP client): see `recipe`."""
    readers: list[Reader] | None = None
    """The readers the driver registered, where they can be pickled; None: the defaults."""


@dataclass(slots=True)
class PartResult:
    summary: RunSummary | None
    """None where the part ended with `error`."""
    done: list[FileDone] = field(default_factory=list)
    """Each file's outcome, as the part reported it."""
    error: tuple[str, str | None] | None = None
    """The message and hint of the `RagidxError` that ended the part."""


def recipe(embedder: Embedder, share: int) -> Callable[[], MinimalEmbedder]:
    """How a task builds an embedder like `embedder`, pacing at `1/share` of its `--rpm` and
    `--tpm` (`share` tasks run at once, and the budget is the API key's). An HTTP embedder
    is built anew from its settings (the API key travels with them), with the width it
    learned; any other is pickled (the hash embedder), or `ConfigError`."""
    from ragidx.embed.http import HttpEmbedder  # only for the HTTP providers

    if isinstance(embedder, HttpEmbedder):
        s = embedder.settings
        settings = dataclasses.replace(
            s,
            dims=embedder.dims or s.dims,
            rpm=s.rpm / share if s.rpm is not None else None,
            tpm=s.tpm / share if s.tpm is not None else None,
        )
        return functools.partial(type(embedder), settings)
    try:
        data = pickle.dumps(embedder)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"--ray: the embedder {type(embedder).__name__} cannot be sent to Ray tasks ({exc})",
            hint="each task builds its own: use a provider ragidx knows, or a picklable one",
        ) from exc
    return functools.partial(pickle.loads, data)


def index_part(paths: list[str], job: Job, label: str) -> PartResult:
    """Index `paths` as the part named `label`; runs in a Ray worker (see the module)."""
    if job.readers is not None:
        read.restore(job.readers)
    config = dataclasses.replace(job.config, part=label)
    done: list[FileDone] = []

    def collect(event: object) -> None:
        if isinstance(event, FileDone):
            done.append(event)
        elif isinstance(event, FilesUnchanged):
            # Committed before (by this task, once, before its worker died): unchanged now.
            done.extend(
                FileDone(path, FileStatus.UNCHANGED, chunks, 0, reason)
                for path, chunks, reason in zip(
                    event.paths, event.chunks, event.reasons, strict=True
                )
            )

    from ragidx.pipeline.run import run_index  # the run's stages: loaded in the worker only

    embedder = job.embedder()
    work = run_index(iter(paths), embedder, config, collect)
    try:
        summary = asyncio.run(closing(embedder, work))
    except RagidxError as exc:
        return PartResult(None, done, (exc.message, exc.hint))
    return PartResult(summary, done)
