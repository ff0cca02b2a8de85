"""Asking a running index to stop: it takes no new work, lets requests in flight finish
(each within a grace period), commits every file that is complete, and returns."""

from __future__ import annotations

import asyncio
import signal

__all__ = ["StopSignal"]


class StopSignal:
    """Safe to `request()` from a signal handler or another thread, before or during a run."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        """The signal that asked (SIGINT, SIGTERM), if one did: the exit code follows it."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self) -> asyncio.Event:
        """Called by the run, on its loop: the event that is set once stopping is asked."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        if self.requested:
            self._event.set()
        return self._event

    def request(self, signum: int | None = None) -> None:
        self.requested = True
        self.signum = self.signum or signum
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)

    @property
    def exit_code(self) -> int:
        """128 + the signal, as a shell reports a process it ended: 130 for Ctrl-C (also
        when no signal asked), 143 for SIGTERM."""
        return 128 + (self.signum or signal.SIGINT)
