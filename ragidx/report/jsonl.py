"""`--json`: one JSON object per file on stdout, then one summary, and nothing else."""

from __future__ import annotations

import json
from typing import TextIO

from ..events import Event, FileDone, RunFinished
from .base import display_path

__all__ = ["JsonLinesReporter"]


class JsonLinesReporter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, FileDone):
            record: dict[str, object] = {
                "event": "file",
                "path": display_path(event.path),
                "status": event.status.value,
                "chunks": event.chunks,
                "tokens": event.tokens,
                "reason": event.reason,
            }
            if event.encoding is not None:
                record["encoding"] = event.encoding
            self._write(record)
        elif isinstance(event, RunFinished):
            self._write({"event": "summary", **event.summary.as_dict()})

    def _write(self, record: dict[str, object]) -> None:
        if self.closed:
            return
        try:
            self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.stream.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): the index is the job, so it goes on, silently.
            self.closed = True

    def close(self) -> None:
        pass
