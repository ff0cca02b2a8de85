"""What `ragidx index` does around the core's run: paths from stdin, the reporters, the
settings in force (`--verbose`), Ctrl-C and SIGTERM, and the run's outcome as an exit code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ragidx.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    fail,
    stderr,
)
from ragidx.config import IndexConfig
from ragidx.embed import Embedder, EmbedOptions, closing
from ragidx.errors import ConfigError, Interrupted, RagidxError
from ragidx.pipeline.interrupt import StopSignal
from ragidx.report import JsonLinesReporter, Reporter, Reporters, RichReporter
from ragidx.settings import shown
from ragidx.store import Footprint

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["effective_settings", "execute", "paths_to_index", "reporter_for"]


def paths_to_index(paths: list[str], *, null: bool, retry_failed: bool) -> Iterable[str]:
    """The paths to index: the arguments, or a lazy stream of paths from stdin for `-`.
    Raises `ConfigError` for a combination that means nothing."""
    if not paths and not retry_failed:
        raise ConfigError("give at least one PATH, or - to read paths from stdin")
    if "-" in paths and len(paths) > 1:
        raise ConfigError("`-` (paths from stdin) cannot be combined with other paths")
    if null and paths != ["-"]:
        raise ConfigError("--null applies to paths read from stdin", hint="ragidx index --null -")
    return _stdin_paths(null) if paths == ["-"] else paths


def _stdin_paths(null: bool) -> Iterator[str]:
    if null:
        buffer = ""
        while block := sys.stdin.read(65536):
            *complete, buffer = (buffer + block).split("\0")
            yield from (p for p in complete if p)
        if buffer:
            yield buffer
    else:
        for line in sys.stdin:
            if path := line.rstrip("\r\n"):
                yield path


def reporter_for(json_out: bool, quiet: bool, verbose: bool, progress: bool | None) -> Reporter:
    """JSON lines on stdout where asked; the progress bar and summary on stderr."""
    reporters: list[Reporter] = []
    if json_out:
        reporters.append(JsonLinesReporter(sys.stdout))
    console: Console | Callable[[], Console] = stderr
    show = False
    if not quiet and progress is not False:
        console = stderr()
        show = progress or console.is_terminal
    reporters.append(RichReporter(console, progress=show, verbose=verbose, summary=not quiet))
    return Reporters(*reporters)


def effective_settings(
    embedder: Embedder, config: IndexConfig, http: EmbedOptions, settings_file: Path | None
) -> str:
    """The settings in force, for --verbose. The API key is only said to be set or not."""
    from ragidx.pipeline.prepare import pick_tokenizer, usable_cores

    chunk = pick_tokenizer(embedder, config).chunk  # as the run will count and cut
    server = embedder.server
    parts = {
        "provider": embedder.provider,
        "model": embedder.model,
        "dims": embedder.dims or "(from the server)",
        "base_url": shown(server.base_url, 500) if server else None,
        "api_key": "set" if server and server.auth == "bearer" else None,
        "auth": server.auth if server else None,
        "batch_size": config.batch_inputs or embedder.max_inputs,
        "max_batch_tokens": config.batch_tokens or embedder.max_tokens,
        "concurrency": http.concurrency,
        "rpm": http.rpm,
        "tpm": http.tpm,
        "timeout": http.timeout,
        "max_retries": http.max_retries,
        "chunk_tokens": chunk.chunk_tokens,
        "chunk_overlap": chunk.chunk_overlap,
        "tokenizer": chunk.tokenizer,
        "pack": chunk.packs,
        "workers": usable_cores() if config.workers is None else config.workers,
        "on_long_chunk": config.on_long_chunk.value,
        "db": config.db_shown,
        "settings_file": settings_file,
    }
    return "settings: " + " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)


# glibc gives each thread that contends for the heap an arena of its own, up to 8 a core;
# the threads of an index run (the writer, the worker pool's pipes) left half-empty arenas
# behind: indexing the 1 GB corpus peaked at 322 MB, its 400 MB of large files alone at 206 MB
# (157 MB with two arenas, at the same speed). `MALLOC_ARENA_MAX` set by the user wins.
_ARENAS = 2
_M_ARENA_MAX = -8


def _few_malloc_arenas() -> None:
    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return
    import ctypes

    # Not glibc (musl has no arenas to bound): nothing to do.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, _ARENAS)


def execute(
    sources: Iterable[str],
    embedder: Embedder,
    config: IndexConfig,
    reporter: Reporter,
    *,
    retry_failed: bool,
) -> int:
    """Run the index, closing the embedder after, and return the exit code: 0 all done, 1
    some files failed, 130 or 143 stopped by a signal. A run that fails before it stores
    anything leaves no index, lock or directory behind; its error goes out through `fail`."""
    from ragidx.pipeline.run import run_index  # only `index` runs one: others start without it

    _few_malloc_arenas()  # before the run's threads start
    stop = StopSignal()
    work = run_index(sources, embedder, config, reporter, retry_failed=retry_failed, stop=stop)
    footprint = None if config.dry_run or config.db_url else Footprint.before(config.db_path)
    try:
        with _stop_on_signals(stop, reporter):
            summary = asyncio.run(closing(embedder, work))
    except Interrupted as exc:
        _take_back(footprint, reporter)
        stderr().print(f"{_stopped_by(stop)}: {exc.message}")
        return stop.exit_code
    except RagidxError as exc:
        _take_back(footprint, reporter)
        fail(exc)
    except KeyboardInterrupt:
        _take_back(footprint, reporter)
        stderr().print("interrupted: files already committed stay in the index")
        return EXIT_INTERRUPTED
    reporter.close()
    if summary.interrupted:
        if footprint is not None:
            footprint.take_back()
        return stop.exit_code
    return EXIT_OK if summary.ok else EXIT_FAILED


def _take_back(footprint: Footprint | None, reporter: Reporter) -> None:
    reporter.close()
    if footprint is not None:
        footprint.take_back()


@contextlib.contextmanager
def _stop_on_signals(stop: StopSignal, reporter: Reporter) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM (what `timeout`, systemd and Kubernetes send first) asks
    the run to stop cleanly; a second of either quits at once. Either way the index stays
    whole: every commit is one SQLite transaction."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (CliRunner in a thread, say)
        return

    def on_signal(signum: int, frame: object) -> None:
        if not stop.requested:
            stop.request(signum)
            return
        # Only the JSON lines of committed files go out: closing the progress display from
        # inside a signal handler could wait on the lock its own thread holds.
        for each in getattr(reporter, "reporters", (reporter,)):
            if isinstance(each, JsonLinesReporter):
                each.close()
        again = "terminated" if signum == signal.SIGTERM else "interrupted"
        os.write(2, f"\n{again} again: quitting now; committed files stay in the index\n".encode())
        os._exit(128 + signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped_by(stop: StopSignal) -> str:
    return "terminated" if stop.signum == signal.SIGTERM else "interrupted"
