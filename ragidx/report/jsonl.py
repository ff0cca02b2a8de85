"""`--json`: one JSON object per file on stdout, then one summary, and nothing else."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from ragidx.events import Event, FileDiscovered, FileDone, FilesUnchanged, RunFinished
from ragidx.report.base import display_path

__all__ = ["JsonLinesReporter"]


class JsonLinesReporter:
    """Files come out in the order the walk found them, whatever order they finish in (the
    readers and requests of a run race each other): a file's line waits for the files found
    before it. Two runs over the same tree write the same lines in the same order.

    Lines go out in bunches: every `FLUSH_LINES` lines, or on the first event `FLUSH_SECONDS`
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
        # Files found and not yet written out, in the walk's order: a line, or None while
        # the file is in the works. `_waiting` finds a file's place by its path.
        self._queue: deque[list[str | None]] = deque()
        self._waiting: dict[str, list[str | None]] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, FileDiscovered):
            slot: list[str | None] = [None]
            self._waiting[event.path] = slot
            self._queue.append(slot)
        elif isinstance(event, FileDone):
            path = display_path(event.path, self.cwd)
            record = _file(path, event.status.value, event.chunks, event.tokens, event.reason)
            if event.encoding is not None:
                record["encoding"] = event.encoding
            if event.unit is not None:
                record[f"{event.unit}s"] = event.pages
            line = json.dumps(record, ensure_ascii=False)
            waiting = self._waiting.pop(event.path, None) if event.announced else None
            if waiting is not None:
                waiting[0] = line
            else:
                self._next(line)
        elif isinstance(event, FilesUnchanged):
            for path, chunks, reason in zip(event.paths, event.chunks, event.reasons, strict=True):
                record = _file(display_path(path, self.cwd), "unchanged", chunks, 0, reason)
                self._next(json.dumps(record, ensure_ascii=False))
        elif isinstance(event, RunFinished):
            self._release(everything=True)
            summary = {"event": "summary", **event.summary.as_dict()}
            self._add(json.dumps(summary, ensure_ascii=False))
            self._flush()
            return
        self._release()
        if self._lines and (
            len(self._lines) >= self.FLUSH_LINES or self.clock() - self._since >= self.FLUSH_SECONDS
        ):
            self._flush()

    def _next(self, line: str) -> None:
        """A line for a file found and done at once: out now, unless files found before it
        are still in the works."""
        if self._queue:
            self._queue.append([line])
        else:
            self._add(line)

    def _release(self, *, everything: bool = False) -> None:
        """Lines whose turn has come; with `everything`, the run is over: files that never
        finished (a stopped run) have no line, and the rest go out in order."""
        queue = self._queue
        while queue and (queue[0][0] is not None or everything):
            if (line := queue.popleft()[0]) is not None:
                self._add(line)
        if everything:
            self._waiting.clear()

    def _add(self, line: str) -> None:
        if not self._lines:
            self._since = self.clock()
        self._lines.append(line)

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
        self._release(everything=True)
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
