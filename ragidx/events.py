"""Typed events the pipeline emits; reporters render them, the core never draws."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ragidx.models import FileStatus, RunSummary

__all__ = [
    "BatchEmbedded",
    "BuildingVectorIndex",
    "ChunkLimit",
    "Event",
    "EventSink",
    "FileDiscovered",
    "FileDone",
    "FilesUnchanged",
    "RunFinished",
    "RunStarted",
    "Stopping",
    "WaitingForIndex",
    "WalkFinished",
    "WorkersUnavailable",
]


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: int
    roots: tuple[str, ...]
    embedder: str
    model: str
    dims: int


class FileDiscovered(NamedTuple):
    """The walker found a file; progress totals grow as the walk goes on. (Per-file events
    are tuples: a no-op run over a large tree makes one or two per file.)"""

    path: str


class FileDone(NamedTuple):
    """A file's outcome, emitted once the store holds it (or it was given up)."""

    path: str
    status: FileStatus
    chunks: int = 0
    tokens: int = 0
    reason: str | None = None
    encoding: str | None = None
    announced: bool = True
    """False for a file found and done at once, with no `FileDiscovered` before it."""
    unit: str | None = None
    """What `pages` counts in a paged document: "page", "slide", "sheet"."""
    pages: int | None = None


class FilesUnchanged(NamedTuple):
    """Files the index already holds as they are, found and done at once: one event for a
    bunch of them (most files of a re-run), with no `FileDiscovered` before it."""

    paths: list[str]
    chunks: list[int]
    reasons: list[str | None]


@dataclass(frozen=True, slots=True)
class WalkFinished:
    """The walk is over, and the sweep for removed files: `files` is how many files this
    run reports (each once, in `FileDone` or `FilesUnchanged`), the progress total from now
    on. Not sent when the run stops before the walk ends."""

    files: int


@dataclass(frozen=True, slots=True)
class BatchEmbedded:
    """A batch came back; `requests`, `retries` and `rate_limited` count the run so far."""

    inputs: int
    tokens: int
    seconds: float
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


@dataclass(frozen=True, slots=True)
class ChunkLimit:
    """The server says how many tokens its model reads (TEI's `/info`) and the chunk size
    was more: chunks were cut to fit (`fitted`), or, the size being given, they were not,
    and the server may cut or refuse the longer ones."""

    model_tokens: int
    chunk_tokens: int
    fitted: bool


@dataclass(frozen=True, slots=True)
class WaitingForIndex:
    """Another process is writing the index; this run waits for it to finish."""

    db: str
    """The index's location: a file's path, or a URL without its password."""
    holder: str | None


@dataclass(frozen=True, slots=True)
class BuildingVectorIndex:
    """The run's files are committed; the store builds its vector index over `vectors` as
    the run ends (Postgres's HNSW graph: minutes at millions of vectors)."""

    vectors: int


@dataclass(frozen=True, slots=True)
class WorkersUnavailable:
    """Worker processes could not start here (`reason`): this process reads and chunks
    every file itself, on one core."""

    reason: str


@dataclass(frozen=True, slots=True)
class Stopping:
    """Stopping was asked: no new work; requests in flight get `grace` seconds to finish."""

    grace: float


@dataclass(frozen=True, slots=True)
class RunFinished:
    summary: RunSummary


Event = (
    RunStarted
    | FileDiscovered
    | FileDone
    | FilesUnchanged
    | WalkFinished
    | BatchEmbedded
    | ChunkLimit
    | WaitingForIndex
    | BuildingVectorIndex
    | WorkersUnavailable
    | Stopping
    | RunFinished
)
EventSink = Callable[[Event], None]
