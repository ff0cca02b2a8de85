"""Walk results against what the index holds: what to read, what is unchanged, what is gone.

Runs in a worker thread with its own read connection. It keeps one directory's index rows in
memory at a time (the walker yields a directory's files together), plus the set of
directories visited, so memory follows the widest directory, not the corpus. A directory
whose walk matches its stamp (`store.stamps`) is planned as a whole, without reading a row
per file.

With a shard (`--shard K/N`), the files of other parts are passed over as if the walk had
not found them, and only this part's rows of the index are compared or swept: N runs split
a tree without one touching another's files.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, cast

from ragidx.config import Shard
from ragidx.models import FileInfo, FileStatus
from ragidx.pipeline.covered import Covered
from ragidx.store import FileRecord, Stamp, Store, listing_digest
from ragidx.walk.walker import MISSING, DirVisited, Skipped, WalkItem

__all__ = ["Done", "Plan", "Planner", "Read", "Unchanged", "Write"]


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


class Unchanged(NamedTuple):
    """Files the index holds as they are, planned together: on a re-run of a large tree
    nearly every file is one, so they travel as one plan, not a plan each."""

    paths: list[str]
    chunks: list[int]
    reasons: list[str | None]


Plan = Read | Write | Done | Unchanged


class Planner:
    def __init__(
        self,
        store: Store,
        chunking: str,
        covered: Covered | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.store = store
        self.chunking = chunking
        self.shard = shard
        # The directories a list of paths stands for, and what it named under them.
        self.covered = covered
        self.visited: set[str] = set()
        # Directories that could not be read: what the index holds under them is kept.
        self.unreadable: list[str] = []
        self._dir: str | None = None
        self._rows: dict[str, Stamp] = {}
        self._last_named: str | None = None
        self._named_dir: str | None = None
        self._named_rows: dict[str, Stamp] = {}

    def plan(self, listings: list[list[WalkItem]]) -> list[Plan]:
        """Plans for a slice of the walk, one listing (a directory's, or a named path) at a
        time."""
        out: list[Plan] = []
        for listing in listings:
            self._listing(listing, out)
        return out

    def _listing(self, listing: list[WalkItem], out: list[Plan]) -> None:
        # A directory's listing starts with its `DirVisited`: its files' rows are at hand.
        in_dir = False
        if isinstance(first := listing[0], DirVisited):
            in_dir = True
            out += self._leave_dir()
            # A directory's stamp stands for all of its files, of every shard.
            if self.shard is None and self._unchanged_dir(first.path, listing, out):
                return
            self._enter_dir(first.path)
        elif self.covered is not None:
            for item in listing:
                self.covered.name(str(item.path))
        rows, chunking, shard = self._rows, self.chunking, self.shard
        bunch = out[-1] if out and isinstance(out[-1], Unchanged) else None
        # One loop with locals, the unchanged case inline: a re-run is mostly that case.
        for item in listing:
            if type(item) is not FileInfo:
                if isinstance(item, Skipped) and self._ours(item):
                    out += self._skipped(item)
                continue
            path = item.path
            if shard is not None and not shard.holds(path):
                continue
            if not (path.isascii() or _storable(path)):
                out.append(Done(path, FileStatus.FAILED, 0, UNSTORABLE))
                continue
            stamp = rows.pop(path, None) if in_dir else self._stamp(path)
            # As indexed: the same size and mtime, chunked the same way.
            same = (
                stamp is not None
                and stamp.mtime_ns == item.mtime_ns
                and stamp.size == item.size
                and stamp.chunking == chunking
            )
            if same and stamp is not None and stamp.status == _INDEXED:
                # Unchanged files join the bunch at the end of `out`, or start one there, so
                # the plans keep the walk's order.
                if bunch is None or out[-1] is not bunch:
                    bunch = Unchanged([], [], [])
                    out.append(bunch)
                bunch.paths.append(path)
                bunch.chunks.append(stamp.chunks)
                bunch.reasons.append(stamp.reason)
            else:
                self._file(item, stamp, same, out)

    def _unchanged_dir(self, directory: str, listing: list[WalkItem], out: list[Plan]) -> bool:
        """Plan the directory as a whole if its files are exactly those its stamp stands for;
        False leaves it to be compared file by file."""
        k = len(listing)
        others: list[Skipped] = []
        if type(listing[-1]) is Skipped:
            # Entries that are no file come last and are never stored: the stamp holds
            # without them, and they are reported as skipped after the files.
            while k > 1 and isinstance(item := listing[k - 1], Skipped) and item.not_file:
                others.append(item)
                k -= 1
            others.reverse()
        files = cast("list[FileInfo]", listing[1:k])
        if not files or set(map(type, files)) != _JUST_FILES or not _storable(directory):
            return False
        stamp = self.store.dir_stamp(directory)
        if (
            stamp is None
            or stamp.chunking != self.chunking
            or len(stamp.chunks) != len(files)
            or stamp.digest != listing_digest(files)
        ):
            return False
        self.visited.add(directory)
        paths, chunks = list(map(_path_of, files)), stamp.chunks
        reasons: list[str | None] = [None] * len(files)
        for i, _, reason in stamp.notes:
            reasons[i] = reason
        start = 0
        for i, status, reason in stamp.notes:
            if status == _SKIPPED:
                _join(out, Unchanged(paths[start:i], chunks[start:i], reasons[start:i]))
                out.append(Done(paths[i], FileStatus.SKIPPED, chunks[i], reason))
                start = i + 1
        _join(out, Unchanged(paths[start:], chunks[start:], reasons[start:]))
        out += (Done(str(o.path), FileStatus.SKIPPED, 0, o.reason) for o in others)
        return True

    def finish(self, roots: list[Path]) -> list[Plan]:
        """After the walk: files under the roots in directories the walk never entered."""
        out = self._leave_dir()
        for root in roots:
            if not _storable(str(root)):
                continue
            for directory in self.store.dirs_under(str(root)):
                if directory not in self.visited and not self._under_unreadable(directory):
                    self.visited.add(directory)
                    out += (_removed(p) for p in sorted(self._own(directory)))
        if self.covered is not None:
            out += self._unnamed(self.covered)
        return out

    def _unnamed(self, covered: Covered) -> Iterator[Plan]:
        """Indexed files under what a list covers that it did not name: removed. Those in a
        directory walked in this run had its walk's sweep already."""
        for root in covered.roots:
            if not _storable(root) or self._under_unreadable(root):
                continue
            for path in covered.unnamed(root, self.store.paths_under(root)):
                if path.rpartition(os.sep)[0] not in self.visited and self._holds(path):
                    yield _removed(path, UNNAMED)

    def _under_unreadable(self, directory: str) -> bool:
        return any(directory == d or directory.startswith(d + os.sep) for d in self.unreadable)

    def _enter_dir(self, directory: str) -> None:
        self._dir = directory
        self.visited.add(directory)
        self._rows = self._own(directory) if _storable(directory) else {}

    def _own(self, directory: str) -> dict[str, Stamp]:
        """The index's rows of a directory's files, this shard's only."""
        rows = self.store.stamps_in_dir(directory)
        if self.shard is None:
            return rows
        return {path: stamp for path, stamp in rows.items() if self.shard.holds(path)}

    def _holds(self, path: str) -> bool:
        return self.shard is None or self.shard.holds(path)

    def _ours(self, item: Skipped) -> bool:
        """Whether this shard reports a skipped entry: a directory that cannot be read is
        every shard's (what the index holds under it is kept)."""
        return item.directory or self._holds(str(item.path))

    def _leave_dir(self) -> list[Plan]:
        gone: list[Plan] = [_removed(path) for path in sorted(self._rows)]
        self._dir, self._rows = None, {}
        return gone

    def _stamp(self, path: str) -> Stamp | None:
        directory = path.rpartition(os.sep)[0]
        if directory == self._dir:
            return self._rows.pop(path, None)
        # Files named one by one (a list on stdin) come a directory at a time, as `find`
        # lists them: from the second in a row, the directory's rows are read at once.
        if directory == self._named_dir:
            return self._named_rows.get(path)
        if directory == self._last_named:
            self._named_dir, self._named_rows = directory, self.store.stamps_in_dir(directory)
            return self._named_rows.get(path)
        self._last_named = directory
        return self.store.stamp(path)

    def _file(self, info: FileInfo, stamp: Stamp | None, same: bool, out: list[Plan]) -> None:
        """A file that is not unchanged, or not indexed: read it, or keep its skip."""
        if stamp is None:
            out.append(Read(info, None))
            return
        if same and stamp.status == _SKIPPED:
            # A reader's skip (binary, empty) is stored with the chunking fingerprint and
            # holds while the content does; a walker's skip (size cap) is decided anew.
            out.append(Done(info.path, FileStatus.SKIPPED, stamp.chunks, stamp.reason))
            return
        # The whole record, with the content hash that may yet show the file unchanged.
        out.append(Read(info, self.store.lookup(info.path)))

    def _skipped(self, item: Skipped) -> Iterator[Plan]:
        path = str(item.path)
        if item.not_file:
            yield self._not_a_file(path, item.reason)
        elif not _storable(path):
            yield Done(path, FileStatus.FAILED, 0, UNSTORABLE)
        elif item.directory:
            self.unreadable.append(path)
            yield Done(path, FileStatus.FAILED, 0, item.reason)
        elif item.reason == MISSING:
            if self._stamp(path) is not None:
                yield _removed(path)
            elif not self.store.dirs_under(path):
                yield Write(path, FileStatus.FAILED, MISSING)
        else:
            if self._dir is not None and path.rpartition(os.sep)[0] == self._dir:
                self._rows.pop(path, None)
            status = FileStatus.FAILED if item.error else FileStatus.SKIPPED
            yield Write(path, status, item.reason, item.size, item.mtime_ns)

    def _not_a_file(self, path: str, reason: str) -> Plan:
        """Reported, not stored; a file the index held by that name (a link followed once,
        a file replaced by a FIFO) is removed."""
        stored = None
        if self._dir is not None and path.rpartition(os.sep)[0] == self._dir:
            stored = self._rows.pop(path, None)
        if stored is not None:
            return Write(path, FileStatus.REMOVED, reason)
        return Done(path, FileStatus.SKIPPED, 0, reason)


_INDEXED, _SKIPPED = FileStatus.INDEXED.value, FileStatus.SKIPPED.value
_JUST_FILES = {FileInfo}
_path_of = operator.itemgetter(0)
UNSTORABLE = "file name is not valid UTF-8, which the index cannot store"


def _storable(path: str) -> bool:
    """Whether SQLite can hold the path: names that are not UTF-8 decode to surrogates."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _join(out: list[Plan], bunch: Unchanged) -> None:
    """Add unchanged files to the plans, to the bunch at the end if there is one."""
    if not bunch.paths:
        return
    if out and isinstance(last := out[-1], Unchanged):
        last.paths.extend(bunch.paths)
        last.chunks.extend(bunch.chunks)
        last.reasons.extend(bunch.reasons)
    else:
        out.append(bunch)


UNNAMED = "not in the paths given (--covers)"


def _removed(path: str, unwanted: str = "excluded by ignore rules or filters") -> Write:
    reason = "deleted" if not os.path.lexists(path) else unwanted
    return Write(path, FileStatus.REMOVED, reason)
