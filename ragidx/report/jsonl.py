"""`--json`: one JSON object per file on stdout, then one summary, and nothing else."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TextIO

from ..events import Event, FileDone, FilesUnchanged, RunFinished
from .base import display_path

__all__ = ["JsonLinesReporter"]


class JsonLinesReporter:
    """Lines go out in bunches: every `FLUSH_LINES` lines, or on the first event `FLUSH_SECONDS`
    after a line waited, and at the end. A line each would be a write each (100,000 on a
    re-run of a large tree), and a reader still sees lines within a moment."""

    FLUSH_LINES = 512
    FLUSH_SECONDS = 0.05

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.closed = False
        self.clock = clock
        self.cwd = os.getcwd()
        self._lines: list[str] = []
        self._since = 0.0

    def __call__(self, event: Event) -> None:
        if isinstance(event, FileDone):
            path = display_path(event.path, self.cwd)
            record = _file(path, event.status.value, event.chunks, event.tokens, event.reason)
            if event.encoding is not None:
                record["encoding"] = event.encoding
            self._add(record)
        elif isinstance(event, FilesUnchanged):
            for path, chunks, reason in zip(event.paths, event.chunks, event.reasons, strict=True):
                self._add(_file(display_path(path, self.cwd), "unchanged", chunks, 0, reason))
        elif isinstance(event, RunFinished):
            self._add({"event": "summary", **event.summary.as_dict()})
            self._flush()
            return
        if self._lines and (
            len(self._lines) >= self.FLUSH_LINES or self.clock() - self._since >= self.FLUSH_SECONDS
        ):
            self._flush()

    def _add(self, record: dict[str, object]) -> None:
        if not self._lines:
            self._since = self.clock()
        self._lines.append(json.dumps(record, ensure_ascii=False))

    def _flush(self) -> None:
        lines, self._lines = self._lines, []
        if self.closed or not lines:
            return
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): the index is the job, so it goes on, silently.
            self.closed = True

    def close(self) -> None:
        self._flush()


def _file(
    path: str, status: str, chunks: int, tokens: int = 0, reason: str | None = None
) -> dict[str, object]:
    return {
        "event": "file",
        "path": path,
        "status": status,
        "chunks": chunks,
        "tokens": tokens,
        "reason": reason,
    }
