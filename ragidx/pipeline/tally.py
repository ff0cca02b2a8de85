"""Files a stage has seen through to their outcome: counted, and reported as `FileDone`.

The walk reports the files it finds done at once; the commit stage those the store now
holds. Each keeps its own `Tally`; the run adds them up into the `RunSummary` at the end.
"""

from __future__ import annotations

from ragidx.events import EventSink, FileDone
from ragidx.models import FileStatus, RunSummary

__all__ = ["Tally"]


class Tally:
    def __init__(self, emit: EventSink) -> None:
        self.emit = emit
        self.counts: dict[FileStatus, int] = dict.fromkeys(FileStatus, 0)
        self.chunks = 0
        self.tokens = 0
        self.total = 0
        """Files done that were announced (`FileDiscovered`) before."""

    def done(
        self,
        path: str,
        status: FileStatus,
        chunks: int,
        tokens: int,
        reason: str | None,
        encoding: str | None = None,
        *,
        announced: bool = True,
        unit: str | None = None,
        pages: int | None = None,
    ) -> None:
        """One file's outcome: counted, and reported (`announced`: after a `FileDiscovered`)."""
        self.counts[status] += 1
        self.total += announced
        if status is FileStatus.INDEXED:
            self.chunks += chunks
            self.tokens += tokens
        self.emit(FileDone(path, status, chunks, tokens, reason, encoding, announced, unit, pages))

    def add_to(self, summary: RunSummary) -> None:
        for status, n in self.counts.items():
            summary.counts[status] += n
        summary.chunks += self.chunks
        summary.tokens += self.tokens
