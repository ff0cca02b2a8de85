"""Walk results against what the index holds: what to read, what is unchanged, what is gone.

Runs in a worker thread with its own read connection. It keeps one directory's index rows in
memory at a time (the walker yields a directory's files together), plus the set of
directories visited, so memory follows the widest directory, not the corpus.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .models import FileInfo, FileStatus
from .store import FileRecord, SqliteStore
from .walker import MISSING, DirVisited, Skipped, WalkItem

__all__ = ["Done", "Plan", "Planner", "Read", "Write"]


@dataclass(frozen=True, slots=True)
class Read:
    """Read, chunk and embed this file; `record` is its previous version, if any."""

    info: FileInfo
    record: FileRecord | None


@dataclass(frozen=True, slots=True)
class Write:
    """Record this outcome in the index (skipped, failed or removed)."""

    path: str
    status: FileStatus
    reason: str
    size: int = 0
    mtime_ns: int = 0


class Done(NamedTuple):
    """Nothing to do: the index already holds this file as it is. (A tuple: there is one
    for every unchanged file.)"""

    path: str
    status: FileStatus
    chunks: int
    reason: str | None


Plan = Read | Write | Done


class Planner:
    def __init__(self, store: SqliteStore, chunking: str) -> None:
        self.store = store
        self.chunking = chunking
        self.visited: set[str] = set()
        # Directories that could not be read: what the index holds under them is kept.
        self.unreadable: list[str] = []
        self._dir: str | None = None
        self._rows: dict[str, FileRecord] = {}

    def plan(self, items: list[WalkItem]) -> list[Plan]:
        out: list[Plan] = []
        for item in items:
            if isinstance(item, DirVisited):
                out += self._leave_dir()
                self._enter_dir(str(item.path))
            elif isinstance(item, FileInfo):
                out.append(self._file(item))
            else:
                out += self._skipped(item)
        return out

    def finish(self, roots: list[Path]) -> list[Plan]:
        """After the walk: files under the roots in directories the walk never entered."""
        out = self._leave_dir()
        for root in roots:
            if not _storable(str(root)):
                continue
            for directory in self.store.dirs_under(str(root)):
                if directory not in self.visited and not self._under_unreadable(directory):
                    self.visited.add(directory)
                    out += (_removed(p) for p in sorted(self.store.files_in_dir(directory)))
        return out

    def _under_unreadable(self, directory: str) -> bool:
        return any(directory == d or directory.startswith(d + os.sep) for d in self.unreadable)

    def _enter_dir(self, directory: str) -> None:
        self._dir = directory
        self.visited.add(directory)
        self._rows = self.store.files_in_dir(directory) if _storable(directory) else {}

    def _leave_dir(self) -> list[Plan]:
        gone: list[Plan] = [_removed(path) for path in sorted(self._rows)]
        self._dir, self._rows = None, {}
        return gone

    def _record(self, path: str) -> FileRecord | None:
        if self._dir is not None and path.rpartition(os.sep)[0] == self._dir:
            return self._rows.pop(path, None)
        return self.store.lookup(path)

    def _file(self, info: FileInfo) -> Plan:
        path = info.path
        if not _storable(path):
            return Done(path, FileStatus.FAILED, 0, UNSTORABLE)
        rec = self._record(path)
        if (
            rec is not None
            and rec.size == info.size
            and rec.mtime_ns == info.mtime_ns
            and rec.chunking == self.chunking
            and rec.status in (FileStatus.INDEXED, FileStatus.SKIPPED)
        ):
            # A reader's skip (binary, empty) is stored with the chunking fingerprint and
            # holds while the content does; a walker's skip (size cap) is decided anew.
            status = (
                FileStatus.UNCHANGED if rec.status == FileStatus.INDEXED else FileStatus.SKIPPED
            )
            return Done(path, status, rec.chunks, rec.reason)
        return Read(info, rec)

    def _skipped(self, item: Skipped) -> Iterator[Plan]:
        path = str(item.path)
        if not _storable(path):
            yield Done(path, FileStatus.FAILED, 0, UNSTORABLE)
        elif item.directory:
            self.unreadable.append(path)
            yield Done(path, FileStatus.FAILED, 0, item.reason)
        elif item.reason == MISSING:
            if self._record(path) is not None:
                yield _removed(path)
            elif not self.store.dirs_under(path):
                yield Write(path, FileStatus.FAILED, MISSING)
        else:
            if self._dir is not None and path.rpartition(os.sep)[0] == self._dir:
                self._rows.pop(path, None)
            status = FileStatus.FAILED if item.error else FileStatus.SKIPPED
            yield Write(path, status, item.reason, item.size, item.mtime_ns)


UNSTORABLE = "file name is not valid UTF-8, which the index cannot store"


def _storable(path: str) -> bool:
    """Whether SQLite can hold the path: names that are not UTF-8 decode to surrogates."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _removed(path: str) -> Write:
    reason = "deleted" if not os.path.lexists(path) else "excluded by ignore rules or filters"
    return Write(path, FileStatus.REMOVED, reason)
