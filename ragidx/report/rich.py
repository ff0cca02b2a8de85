"""Progress on a terminal, a line for each failed file, and a summary table at the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..events import (
    BatchEmbedded,
    ChunkLimit,
    Event,
    FileDiscovered,
    FileDone,
    FilesUnchanged,
    RunFinished,
    RunStarted,
    Stopping,
    WaitingForIndex,
)
from ..models import FileStatus, RunSummary
from .base import display_path

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

__all__ = ["RichReporter", "markup_escape"]

_UPDATE_EVERY = 0.1
_STYLES = {
    FileStatus.INDEXED: "green",
    FileStatus.UNCHANGED: "dim",
    FileStatus.REMOVED: "yellow",
    FileStatus.SKIPPED: "cyan",
    FileStatus.FAILED: "bold red",
}


class RichReporter:
    """Renders to `console` (stderr in the CLI). Progress only when asked and on a terminal.

    `console` may be a function that makes one when something is first printed: a quiet run
    that prints nothing does not load rich at all."""

    def __init__(
        self,
        console: Console | Callable[[], Console],
        *,
        progress: bool,
        verbose: bool = False,
        summary: bool = True,
        get_time: Callable[[], float] | None = None,
    ) -> None:
        self._console = console
        self.verbose = verbose
        self.summary = summary
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.discovered = 0
        self.done = 0
        self.started = 0.0
        self.updated = float("-inf")
        self.chunks = 0
        self.tokens = 0
        self.last_batch: BatchEmbedded | None = None
        if progress:
            # Loaded here: a run without a bar (scripts, -q) does not pay for importing it.
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                redirect_stdout=False,
                redirect_stderr=False,
                get_time=get_time,
            )

    @property
    def console(self) -> Console:
        if callable(self._console):
            self._console = self._console()
        return self._console

    def __call__(self, event: Event) -> None:
        # The per-file events first: they come by the hundred thousand.
        if isinstance(event, FileDone):
            self._file(event)
        elif isinstance(event, FilesUnchanged):
            self.done += len(event.paths)
            self.discovered += len(event.paths)
            self._update()
        elif isinstance(event, FileDiscovered):
            self.discovered += 1
            self._update()
        elif isinstance(event, RunStarted):
            self._start()
        elif isinstance(event, BatchEmbedded):
            self.chunks += event.inputs
            self.tokens += event.tokens
            self.last_batch = event
            self._update()
        elif isinstance(event, RunFinished):
            self._stop()
            if self.summary:
                self.console.print(_summary_table(event.summary))
        elif isinstance(event, WaitingForIndex):
            who = f" (pid {event.holder})" if event.holder else ""
            self.console.print(
                f"waiting: another ragidx{who} is writing {markup_escape(str(event.db))};"
                " this run starts when it finishes (--no-wait refuses instead)"
            )
        elif isinstance(event, ChunkLimit):
            self._chunk_limit(event)
        elif isinstance(event, Stopping):
            self.console.print(
                f"stopping: no new work; requests in flight get {event.grace:g} s to finish,"
                " then complete files are committed. Press Ctrl-C again to quit at once."
            )

    def close(self) -> None:
        self._stop()

    def _chunk_limit(self, event: ChunkLimit) -> None:
        model = f"the {event.model_tokens} tokens the model reads (the server's /info)"
        if not event.fitted:
            self.console.print(
                f"warning: --chunk-tokens {event.chunk_tokens} is more than {model}:"
                " the server may cut longer chunks or refuse them"
            )
        elif self.verbose:
            self.console.print(f"chunks of up to {event.chunk_tokens} tokens, to fit {model}")

    def _start(self) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task("indexing", total=None, detail="")
            self.started = self.progress.get_time()
            self.progress.start()

    def _stop(self) -> None:
        if self.progress is not None:
            self._update(force=True)
            self.progress.stop()
            self.progress = None

    def _update(self, *, force: bool = False) -> None:
        if self.progress is None or self.task is None:
            return
        now = self.progress.get_time()
        # Events come by the thousand a second; the bar redraws ten times a second at most.
        if not force and now - self.updated < _UPDATE_EVERY:
            return
        self.updated = now
        elapsed = now - self.started
        rate = f" · {self.chunks / elapsed:,.0f} chunks/s" if elapsed > 0 else ""
        detail = f"{self.chunks:,} chunks · {self.tokens:,} tokens{rate}"
        if (b := self.last_batch) is not None and (b.retries or b.rate_limited):
            detail += f" · {b.requests:,} requests · {b.retries:,} retries · {b.rate_limited:,}x429"
        self.progress.update(self.task, total=self.discovered, completed=self.done, detail=detail)

    def _file(self, event: FileDone) -> None:
        self.done += 1
        self.discovered += not event.announced
        self._update(force=event.status is FileStatus.FAILED)
        show = event.status is FileStatus.FAILED or (
            self.verbose and event.status is not FileStatus.UNCHANGED
        )
        if show:
            style = _STYLES[event.status]
            reason = f": {markup_escape(event.reason)}" if event.reason else ""
            shown = markup_escape(display_path(event.path))
            self.console.print(
                f"[{style}]{event.status.value:>9}[/] {shown}{reason}",
                highlight=False,
            )


def markup_escape(text: str) -> str:
    """`text` shown as it is in a Rich console, not read as markup (rich loads here)."""
    from rich.markup import escape

    return escape(text)


def _summary_table(summary: RunSummary) -> Table:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("what", justify="left")
    table.add_column("count", justify="right")
    if summary.estimate is not None:
        return _dry_run_table(table, summary)
    for status in FileStatus:
        table.add_row(f"[{_STYLES[status]}]{status.value}[/]", f"{summary.counts[status]:,}")
    table.add_row("chunks", f"{summary.chunks:,}")
    table.add_row("tokens", f"{summary.tokens:,}")
    table.add_row("embedded", f"{summary.embedded:,}")
    table.add_row("reused", f"{summary.reused:,}")
    table.add_row("requests", f"{summary.requests:,}")
    if summary.retries or summary.rate_limited:
        table.add_row("retries", f"{summary.retries:,}")
        table.add_row("429s", f"{summary.rate_limited:,}")
    table.add_row("seconds", f"{summary.seconds:.2f}")
    if summary.interrupted:
        table.add_row("[bold red]interrupted[/]", "")
    return table


def _dry_run_table(table: Table, summary: RunSummary) -> Table:
    """What a real run would do; nothing was embedded or written."""
    est = summary.estimate
    assert est is not None
    table.title = "dry run: nothing embedded or written"
    table.title_justify = "left"
    counts = summary.counts
    table.add_row("files to index", f"{counts[FileStatus.INDEXED]:,}")
    for status in (FileStatus.UNCHANGED, FileStatus.REMOVED, FileStatus.SKIPPED):
        table.add_row(f"files {status.value}", f"{counts[status]:,}")
    table.add_row("files failing", f"{counts[FileStatus.FAILED]:,}")
    table.add_row("chunks", f"{summary.chunks:,}")
    table.add_row("chunks reused", f"{summary.reused:,}")
    table.add_row("tokens to embed (est.)", f"{est.tokens:,}")
    table.add_row("requests", f"{est.requests:,}")
    when = "no --rpm/--tpm given" if est.seconds is None else _duration(est.seconds)
    table.add_row("time at the rate limits", when)
    cost = "no --price-per-mtok given" if est.cost is None else f"{est.cost:,.4f}"
    table.add_row("cost", cost)
    return table


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
