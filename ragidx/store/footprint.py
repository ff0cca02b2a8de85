"""What a run that fails before indexing anything takes back: the files and directories it
created (the index, its WAL, its lock, `.ragidx/`). Nothing that existed before the run is
touched, and an index that holds a file or a cached vector is kept.

The lock file is removed while it is held; a run that was waiting on it notices that the
file it locked is gone and locks the new one (`WriterLock.try_acquire`), so two runs never
both hold "the" lock."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ragidx.errors import StoreError
from ragidx.store.lock import WriterLock, lock_path

__all__ = ["Footprint"]

_SIDE_FILES = ("-wal", "-shm", "-journal", "-vectors")


@dataclass(frozen=True, slots=True)
class Footprint:
    """Which of an index's files and directories existed before a run."""

    db: Path
    existed: frozenset[Path]
    new_dirs: tuple[Path, ...]
    """Directories above the index that did not exist, deepest first."""

    @classmethod
    def before(cls, db: Path) -> Footprint:
        paths = [db, *(Path(f"{db}{s}") for s in _SIDE_FILES), lock_path(db)]
        new_dirs: list[Path] = []
        parent = db.absolute().parent
        while not parent.exists() and parent != parent.parent:
            new_dirs.append(parent)
            parent = parent.parent
        return cls(db, frozenset(p for p in paths if os.path.lexists(p)), tuple(new_dirs))

    def take_back(self) -> bool:
        """Remove what the run created, unless another run holds the index now or the index
        this run created holds something; True if it did."""
        lock = WriterLock(self.db)
        try:
            if not lock.try_acquire():
                return False
        except StoreError:
            return False  # no place for a lock, so nothing was made either
        try:
            if self.db not in self.existed and os.path.exists(self.db):
                if not _holds_nothing(self.db):
                    return False
                for path in (self.db, *(Path(f"{self.db}{s}") for s in _SIDE_FILES)):
                    if path not in self.existed:
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()
            if lock.path not in self.existed:
                lock.remove()
        finally:
            lock.release()
        for directory in self.new_dirs:
            try:
                directory.rmdir()
            except OSError:
                break  # something else is in it now
        return True


def _holds_nothing(db: Path) -> bool:
    try:
        conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        (found,) = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM files) OR EXISTS (SELECT 1 FROM embeddings)"
        ).fetchone()
    except sqlite3.OperationalError as exc:
        # Created, but not yet given its tables: it holds nothing.
        return "no such table" in str(exc)
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return not found
