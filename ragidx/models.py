"""The values that flow through the pipeline."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "Chunk",
    "Document",
    "Estimate",
    "FileInfo",
    "FileStatus",
    "RunRecord",
    "RunSummary",
    "StoreStats",
    "WorkerProgress",
]


class FileStatus(enum.StrEnum):
    """What a run did with one file."""

    INDEXED = "indexed"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    SKIPPED = "skipped"
    FAILED = "failed"


class FileInfo(NamedTuple):
    """A file the walker found, as `lstat` (or `stat`, through a followed link) saw it.

    `path` is absolute, and a string; a tuple, not a class: the walker makes one for every
    file of the tree, and a no-op run is mostly that."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Estimate:
    requests: int
    tokens: int
    seconds: float | None
    """At the rate limits; None without --rpm or --tpm (the server's speed decides)."""
    cost: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "tokens": self.tokens,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "cost": None if self.cost is None else round(self.cost, 6),
        }


@dataclass(frozen=True, slots=True)
class Document:
    """A file's text, decoded and reduced to what a reader sees (HTML loses its tags)."""

    path: Path
    text: str
    format: str
    encoding: str
    content_hash: str
    size: int
    mtime_ns: int
    unit: str | None = None
    """What `pages` counts: "page", "slide" or "sheet"; None for a text without them."""
    pages: tuple[int, ...] = ()
    """Where each page (slide, sheet) starts in `text`, in order: page n starts at
    `pages[n - 1]`. An empty page starts where the next one does."""
    outline: tuple[tuple[int, int, str], ...] | None = None
    """The document's headings as its reader found them: (offset in `text`, level from 1,
    title), in order; a heading's section runs to the next one's offset. None: the chunker
    finds headings in the text by its `format` (Markdown, reStructuredText)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document; offsets index the document's text, lines count from 1.

    `input` is the exact string sent to the embedder: the heading path, then the text.
    """

    ordinal: int
    text: str
    input: str
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    heading_path: tuple[str, ...]
    tokens: int
    page_start: int | None = None
    """The page (slide, sheet: the document's `unit`) the chunk starts on; None where the
    document has none."""
    page_end: int | None = None


@dataclass(slots=True)
class RunSummary:
    """What an index run did, in figures."""

    run_id: int = 0
    counts: dict[FileStatus, int] = field(default_factory=lambda: dict.fromkeys(FileStatus, 0))
    chunks: int = 0
    tokens: int = 0
    embedded: int = 0
    """Inputs the embedder returned vectors for in this run."""
    reused: int = 0
    """Chunks whose vector came from the cache, or from an identical chunk of this run."""
    sent_tokens: int = 0
    """Tokens (estimated) of the inputs sent to the embedder; a dry run's, that would be."""
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    dry_run: bool = False
    estimate: Estimate | None = None
    """A dry run's: what indexing would send, take and cost."""

    @property
    def files(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        return self.counts[FileStatus.FAILED] == 0 and not self.interrupted

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "files": self.files,
            **{status.value: n for status, n in self.counts.items()},
            "chunks": self.chunks,
            "tokens": self.tokens,
            "embedded": self.embedded,
            "reused": self.reused,
            "sent_tokens": self.sent_tokens,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            **({"dry_run": True} if self.dry_run else {}),
            **({"estimate": self.estimate.as_dict()} if self.estimate else {}),
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as the index recorded it."""

    id: int
    started_at: float
    finished_at: float | None
    seconds: float | None
    status: str
    roots: list[str]
    summary: dict[str, Any] | None
    """The run's summary (`RunSummary.as_dict`) as it was written; None while it runs."""


@dataclass(frozen=True, slots=True)
class WorkerProgress:
    """One run's progress as every worker on the index sees it (`ragidx stats`, and the
    `ragidx_progress` view for SQL)."""

    run_id: int
    worker: str
    """Who runs it: "host:pid"."""
    shard: str | None
    """The part of the tree it indexes ("K/N"), None for all of it."""
    status: str
    """"running"; "died" where the run's owner is gone without finishing; else how it ended."""
    started_at: float
    heartbeat_at: float | None
    """When the run last committed or reported its files in flight."""
    files_done: int
    """Files indexed, skipped or removed (unchanged files are not counted)."""
    files_failed: int
    in_flight: int
    """Files read, chunked or embedding but not yet committed, at the last heartbeat."""


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What `ragidx stats` shows: counts, the vector space, the last run."""

    db: str
    db_bytes: int
    """The database file and its WAL."""
    files: dict[str, int]
    """Files by status: indexed, skipped and failed always, in that order."""
    chunks: int
    tokens: int
    vectors: int
    cached_vectors: int
    unused_vectors: int
    """Cached vectors no chunk uses: what `gc` drops."""
    held_vectors: int
    """Cached vectors kept for files not yet indexed (staged parts, failed files' chunks)."""
    failed_not_stored: int
    """Failures the last run reported that the index holds no row for."""
    provider: str | None
    model: str | None
    dims: int | None
    chunk_tokens: int | None
    chunk_overlap: int | None
    file_types: dict[str, int]
    """Indexed files by suffix, most common first."""
    last_run: RunRecord | None
    workers: tuple[WorkerProgress, ...] = ()
    """Runs in progress (or died in progress) and those ended in the last hour, newest
    first."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values, keys in field order: the `stats --json` record."""
        return dataclasses.asdict(self)
