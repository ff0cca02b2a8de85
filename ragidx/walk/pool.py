"""Walking the subtrees of a large tree in helper processes, side by side.

A re-run over an unchanged tree is mostly `stat` calls, which one Python process makes one at
a time. The walker hands the subdirectories of a directory to `workers` helper processes:
helper i walks subtrees i, i + workers, ... with the walker's own code and rules, and streams
their listings back through a pipe. The walker reads the subtrees in order, so the walk's
order and results are those of a walk in one process. A helper works ahead only as far as its
pipe holds, so memory stays bounded.

This module is the walk's side; a helper runs `ragidx.walk.helper`, which loads only
`ragidx.walk` and what it needs (not the store, the embedders or asyncio), in 40 ms. Helpers
ignore Ctrl-C and SIGTERM (which `timeout` and systemd send to the whole group), the run's to
handle; they end when their share is walked, and die if their output loses its reader.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ragidx.errors import WalkError
from ragidx.walk.listing import WalkItem, decode_listing, receive, send

if TYPE_CHECKING:
    from ragidx.config import WalkConfig
    from ragidx.walk.rules import IgnoreRules

__all__ = ["WalkPool"]

_PIPE_BYTES = 1 << 20  # how far ahead a helper may work, where the system lets us say
_BOOT = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.path.insert(0, sys.argv[1])  # where this ragidx is, whether installed or not
from ragidx.walk.helper import serve
serve()
"""


class WalkPool:
    """Helper processes for one walk; close it (or use `with`) to stop them."""

    def __init__(self, workers: int, root: str, config: WalkConfig) -> None:
        self.root = root
        # Every setting, so that a helper walks by the same rules (helpers do not fan out).
        self.options = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        self.options["workers"] = 0
        package = str(Path(__file__).parents[2])
        self.helpers: list[subprocess.Popen[bytes]] = []
        # What a helper says on its way out (a traceback) goes into a file, for the error.
        self.errors: dict[int, IO[bytes]] = {}
        self._files = contextlib.ExitStack()
        try:
            for _ in range(workers):
                errors = self._files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
                helper = subprocess.Popen(
                    [sys.executable, "-I", "-c", _BOOT, package],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                )
                self.helpers.append(helper)
                self.errors[helper.pid] = errors
                _widen(helper.stdout)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> WalkPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def listings(
        self, subtrees: list[str], rules: list[IgnoreRules], seen_dirs: set[tuple[int, int]]
    ) -> Iterator[list[WalkItem]]:
        """The listings of each subtree in turn, as the walker would have made them."""
        shared = [(rule.base, list(rule.lines)) for rule in rules]
        workers = len(self.helpers)
        # Each helper gets all of its share in one message, which it reads before it writes
        # anything: neither side can wait on the other with a full pipe.
        for n, helper in enumerate(self.helpers):
            assert helper.stdin is not None
            try:
                send(helper.stdin, (self.root, self.options, shared, subtrees[n::workers]))
                helper.stdin.close()
            except OSError as exc:  # the helper is gone already
                raise self._failed(helper) from exc
        for i in range(len(subtrees)):
            yield from self._subtree(self.helpers[i % workers], seen_dirs)

    def _subtree(
        self, helper: subprocess.Popen[bytes], seen_dirs: set[tuple[int, int]]
    ) -> Iterator[list[WalkItem]]:
        assert helper.stdout is not None
        while True:
            batch = receive(helper.stdout)
            if batch is None:
                raise self._failed(helper)
            for listing in batch:
                if listing is None:
                    return
                yield decode_listing(listing, seen_dirs)

    def _failed(self, helper: subprocess.Popen[bytes]) -> WalkError:
        try:
            code = helper.wait(timeout=1)
        except subprocess.TimeoutExpired:  # its output closed, yet it runs on: stop it
            helper.kill()
            code = helper.wait()
        errors = self.errors[helper.pid]
        errors.seek(0)
        said = [line for line in errors.read().decode(errors="replace").splitlines() if line]
        last = f": {said[-1].strip()}" if said else ""
        return WalkError(
            f"a helper process walking the tree ended early (exit code {code}){last};"
            " nothing was removed from the index",
            hint="run again; if it happens again, please report it",
        )

    def close(self) -> None:
        for helper in self.helpers:
            helper.kill()  # one left working ahead may be blocked on a full pipe
        for helper in self.helpers:
            helper.wait()
            for stream in (helper.stdin, helper.stdout):
                if stream is not None and not stream.closed:
                    with contextlib.suppress(OSError):  # a job it never read: no matter now
                        stream.close()
        self._files.close()
        self.helpers, self.errors = [], {}


def _widen(stream: IO[bytes] | None) -> None:
    """Let a helper work further ahead than the default 64 KiB pipe (Linux only)."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if stream is None or setpipe is None:
        return
    # Capped by /proc/sys/fs/pipe-max-size; where it fails, the default will do.
    with contextlib.suppress(OSError):
        fcntl.fcntl(stream.fileno(), setpipe, _PIPE_BYTES)
