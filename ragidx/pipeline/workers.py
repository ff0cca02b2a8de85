"""Worker processes for the CPU-bound work of a run: reading, decoding, chunking, token
counting and hashing, so every core works while the event loop talks HTTP.

`Workers` is a pool of `size` processes. `await workers.call(fn, *args)` runs `fn` in one of
them; `fn` and its arguments must pickle. The processes start from a fork server (never
`fork` from this process, whose threads may hold locks) and ignore SIGINT: Ctrl-C reaches
the whole process group, and stopping is this process's to decide. Each one watches its
parent and exits when the run's process is gone (kill -9), rather than linger.

A worker that dies (a crash in a native parser, the OOM killer) breaks the pool and every
call in it. Those calls are run again one at a time in a pool of one process: a call that
kills that one too raises `WorkerDied`, so one bad file fails alone and the others go on.
With `size` 0 the calls run in a thread of this process (no processes at all).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

__all__ = ["WorkerDied", "Workers"]

T = TypeVar("T")

# How often a worker looks for its parent, in seconds, where it cannot wait on a pidfd.
_WATCH_INTERVAL = 0.5
# How long the first answer of a new pool may take: the fork server imports the modules
# every worker needs once (0.2 s, seconds on a busy machine).
_START_SECONDS = 30.0


class WorkerDied(Exception):
    """A worker process died running this call (twice: once among others, once alone).
    `signal`: the signal that ended it, where one did and it can be told."""

    def __init__(self, reason: str, signal: int | None = None) -> None:
        super().__init__(reason)
        self.signal = signal


class Workers:
    """A pool of worker processes (see the module docstring); `close` ends it."""

    def __init__(
        self,
        size: int,
        preload: Sequence[str] = (),
        setup: Callable[..., None] | None = None,
        setup_args: tuple[Any, ...] = (),
    ) -> None:
        """`size` processes (0: a thread instead); `preload`: modules each starts with;
        `setup(*setup_args)` runs first in each (both must pickle)."""
        self.size = size
        self._preload = list(preload)
        self._setup = setup
        self._setup_args = setup_args
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._generation = 0
        self._alone: concurrent.futures.ProcessPoolExecutor | None = None
        self._alone_lock = asyncio.Lock()
        self._closed = False

    async def start(self) -> str | None:
        """Start the processes and wait until one answers. Where they cannot start (no
        `/dev/shm`, an interpreter that cannot be run again, a sandbox), fall back to a
        thread for every call, and return why."""
        if self.size == 0:
            return None
        from multiprocessing import spawn

        # Checked first: multiprocessing, failing to run it, leaves warnings and tracebacks.
        executable = os.fsdecode(spawn.get_executable() or "")
        if not os.access(executable, os.X_OK):
            self.size = 0
            return f"cannot run {executable or 'the interpreter'}"
        try:
            pool = self._main()
            await asyncio.wait_for(asyncio.wrap_future(pool.submit(_ping)), _START_SECONDS)
        except (OSError, BrokenProcessPool, RuntimeError, TimeoutError) as exc:
            await asyncio.to_thread(self.close)
            self.size, self._closed = 0, False
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker; its exception is raised here, `WorkerDied` if the worker
        died of it."""
        if self.size == 0:
            return await asyncio.to_thread(fn, *args)
        generation = self._generation
        try:
            return await asyncio.wrap_future(self._main().submit(fn, *args))
        except BrokenProcessPool:
            self._replace(generation)
        # Which call broke the pool is unknown: each one it took goes again, alone.
        async with self._alone_lock:
            alone = self._alone or self._start(1)
            self._alone = alone
            try:
                return await asyncio.wrap_future(alone.submit(fn, *args))
            except BrokenProcessPool:
                self._alone = None
                # The pool's own thread reaps the dead process after it fails the call: its
                # exit status is read once it has (two readers of a fork server's status
                # pipe race, and the loser sees status 255: a timeout taken for a crash).
                processes = list((getattr(alone, "_processes", None) or {}).values())
                await asyncio.to_thread(alone.shutdown, wait=True, cancel_futures=True)
                reason, signum = _death(processes)
                raise WorkerDied(reason, signum) from None

    def close(self) -> None:
        """End the processes; calls not yet started are cancelled. Blocks until they exit:
        call it from a thread."""
        self._closed = True
        for pool in (self._pool, self._alone):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._alone = None

    def _main(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._closed:
            raise asyncio.CancelledError
        if self._pool is None:
            self._pool = self._start(self.size)
        return self._pool

    def _replace(self, generation: int) -> None:
        # The first call to see the break replaces the pool; the others find a new one.
        if generation == self._generation and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self._generation += 1

    def _start(self, size: int) -> concurrent.futures.ProcessPoolExecutor:
        _quiet_tracker()
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if context.get_start_method() == "forkserver":
            # Modules the fork server imports once, so each worker starts with them loaded.
            context.set_forkserver_preload([__name__, *self._preload])
        return concurrent.futures.ProcessPoolExecutor(
            size,
            mp_context=context,
            initializer=_init,
            initargs=(os.getpid(), self._setup, self._setup_args),
        )


def _quiet_tracker() -> None:
    """Start multiprocessing's resource tracker with its stderr on /dev/null: after a second
    Ctrl-C or a kill, it would warn the user of semaphores the pool had no time to free."""
    from multiprocessing import resource_tracker

    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        resource_tracker.ensure_running()


def _death(processes: list[Any]) -> tuple[str, int | None]:
    """How a broken pool's process ended, where it can be told, and the signal that did."""
    for process in processes:
        code = process.exitcode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"worker process killed by {signal.Signals(-code).name}", -code
        if code is not None:
            return f"worker process exited with status {code}", None
    return "worker process died", None


def _ping() -> None:
    """A call that does nothing: the pool answers."""


def _init(parent: int, setup: Callable[..., None] | None, args: tuple[Any, ...]) -> None:
    """Runs first in each worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A call's time limit (`signal.setitimer` by the caller's function) ends the process.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="ragidx-parent").start()
    if setup is not None:
        setup(*args)


def _watch(parent: int) -> None:
    # The worker's own parent is the fork server, which lives while any worker does, so the
    # run's process is watched: a pidfd turns readable when it exits, zombie or not (a pid
    # polled with kill(0) answers while the zombie waits to be reaped).
    try:
        fd = os.pidfd_open(parent)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
        os._exit(1)
    while True:
        time.sleep(_WATCH_INTERVAL)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass
