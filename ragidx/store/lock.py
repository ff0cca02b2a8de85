"""One writer per index: an advisory lock on `<db>.lock`, held for a whole `index` or `gc`.

SQLite serialises transactions, but two runs interleaving their commits would each sweep
the other's files as removed and double the cost; so a second writer waits for the first.
The lock is `flock(2)`: the kernel drops it when the holder dies, even by `kill -9`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ragidx.errors import IndexBusy, Interrupted, StoreError

__all__ = ["WriterLock", "lock_path", "writer_alive", "writer_lock"]

POLL_SECONDS = 0.2


def lock_path(db: Path) -> Path:
    return Path(f"{db}.lock")


def writer_alive(db: Path) -> bool:
    """Whether some process holds the writer lock of `db` now (this one included)."""
    try:
        fd = os.open(lock_path(db), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock taken to ask
    return False


class WriterLock:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = lock_path(db)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        while True:
            if self._fd is None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                except OSError as exc:
                    hint = None
                    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                        hint = (
                            "the index's directory cannot be written here: search, stats and"
                            " export can still read it; to index, copy it somewhere writable"
                        )
                    raise StoreError(f"cannot lock the index {self.db}: {exc}", hint=hint) from exc
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if self._at_path(self._fd):
                break
            # The holder removed the file before letting go (a run that failed took back
            # what it made): whoever locks the file now at the path is the writer.
            os.close(self._fd)
            self._fd = None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        return True

    def _at_path(self, fd: int) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)

    def remove(self) -> None:
        """Delete the lock file; only while holding it (see `try_acquire`)."""
        assert self._fd is not None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def holder(self) -> str | None:
        """The pid the holder wrote, if it can be read."""
        try:
            return self.path.read_text().strip() or None
        except OSError:
            return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


@contextlib.asynccontextmanager
async def writer_lock(
    db: Path,
    *,
    wait: bool,
    on_wait: Callable[[str | None], None],
    give_up: Callable[[], bool] = lambda: False,
) -> AsyncIterator[None]:
    """Hold the writer lock of `db`; when busy, call `on_wait` once and poll until it is
    free (or `give_up()` says to stop: `Interrupted`), or with `wait=False` raise
    `IndexBusy`."""
    lock = WriterLock(db)
    try:
        if not lock.try_acquire():
            holder = lock.holder()
            if not wait:
                who = f" (pid {holder})" if holder else ""
                raise IndexBusy(
                    f"another ragidx is writing the index {db}{who}",
                    hint="wait for it to finish, or leave out --no-wait to wait for it",
                )
            on_wait(holder)
            while not lock.try_acquire():
                if give_up():
                    raise Interrupted("stopped while waiting for the index")
                await asyncio.sleep(POLL_SECONDS)
        yield
    finally:
        lock.release()
