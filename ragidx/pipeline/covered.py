"""What a list of paths covers: the files it named under the directories it stands for.

`find docs -name '*.md' | ragidx index - --covers docs` says the list is every file to index
under docs/, so an indexed file there that the list does not name is gone. The names are kept
in a private temporary SQLite database (on disk, past a small cache), so a list of millions of
paths does not grow the run's memory, and compared with the index in path order, one pass each.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

__all__ = ["Covered"]


class Covered:
    """The directories a list covers, and the paths it named under them."""

    def __init__(self, roots: Iterable[str]) -> None:
        self.roots = tuple(dict.fromkeys(roots))
        # "" opens a temporary database of this connection's own, removed when it closes.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute("CREATE TABLE named (path TEXT PRIMARY KEY) WITHOUT ROWID")
        self._pending: list[tuple[str]] = []

    def covers(self, path: str) -> bool:
        return any(path.startswith(root + "/") for root in self.roots)

    def name(self, path: str) -> None:
        if self.covers(path):
            self._pending.append((path,))
            if len(self._pending) >= 4096:
                self._flush()

    def unnamed(self, root: str, indexed: Iterable[str]) -> Iterator[str]:
        """The paths of `indexed` (under `root`, in path order) that the list did not name."""
        self._flush()
        named = (
            p
            for (p,) in self._db.execute(
                "SELECT path FROM named WHERE path > ? AND path < ? ORDER BY path",
                (root + "/", root + "0"),  # '0' sorts right after '/'
            )
        )
        # A merge of two sorted streams: neither list is held in memory.
        current = next(named, None)
        for path in indexed:
            while current is not None and current < path:
                current = next(named, None)
            if current != path:
                yield path

    def close(self) -> None:
        self._db.close()

    def _flush(self) -> None:
        if self._pending:
            self._db.executemany("INSERT OR IGNORE INTO named VALUES (?)", self._pending)
            self._pending.clear()
