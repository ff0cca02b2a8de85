"""Progress on a terminal, a line for each failed file, and a summary table at the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ragidx.events import (
    BatchEmbedded,
    BuildingVectorIndex,
    ChunkLimit,
    Event,
    FileDiscovered,
    FileDone,
    FilesUnchanged,
    RunFinished,
    RunStarted,
    Stopping,
    WaitingForIndex,
    WalkFinished,
    WorkersUnavailable,
)
from ragidx.models import FileStatus, RunSummary
from ragidx.report.base import display_path
from ragidx.walk.listing import TOO_LARGE, TOO_LARGE_DOCUMENT

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ragidx.report.progress import Figures, ProgressView

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

    The bar counts files: those done out of those found. Its total is the run's only once
    the walk is over (`WalkFinished`); until then it says how many were found so far and
    gives no time left. Its chunks and tokens are the indexed files', as the summary's are.

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
        self.progress: ProgressView | None = None
        self.updated = float("-inf")
        self.get_time = get_time
        self.figures: Figures | None = None
        self.show_progress = progress

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
            if (f := self.figures) is not None:
                f.done += len(event.paths)
                f.found += 0 if f.walked else len(event.paths)
                self._refresh()
        elif isinstance(event, FileDiscovered):
            if (f := self.figures) is not None:
                f.found += 0 if f.walked else 1
                self._refresh()
        elif isinstance(event, BatchEmbedded):
            if (f := self.figures) is not None:
                f.requests, f.retries = event.requests, event.retries
                f.rate_limited = event.rate_limited
                self._refresh()
        elif isinstance(event, WalkFinished):
            if (f := self.figures) is not None:
                f.found, f.walked = event.files, True
                self._refresh(force=True)
        elif isinstance(event, RunStarted):
            self._start()
        elif isinstance(event, RunFinished):
            self._stop(event.summary)
            if self.summary:
                self.console.print(_summary_table(event.summary))
        elif isinstance(event, WaitingForIndex):
            who = f" (pid {event.holder})" if event.holder else ""
            self.console.print(
                f"waiting: another ragidx{who} is writing {markup_escape(str(event.db))};"
                " this run starts when it finishes (--no-wait refuses instead)"
            )
        elif isinstance(event, BuildingVectorIndex):
            self.console.print(
                f"finishing: building the vector index over {event.vectors:,} vectors, which"
                " takes minutes at millions; other runs may write meanwhile. Ctrl-C twice quits"
                " (every file stays committed; the next run to finish builds it)"
            )
        elif isinstance(event, ChunkLimit):
            self._chunk_limit(event)
        elif isinstance(event, WorkersUnavailable):
            self.console.print(
                f"warning: worker processes could not start ({markup_escape(event.reason)});"
                " reading and chunking in this process"
            )
        elif isinstance(event, Stopping):
            self.console.print(
                f"stopping: no new work; requests in flight get {event.grace:g} s to finish,"
                " then complete files are committed. Press Ctrl-C again to quit at once."
            )

    def close(self) -> None:
        self._stop(None)

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
        if self.show_progress and self.progress is None:
            # Loaded here: a run without a bar (scripts, -q) does not pay for importing it.
            from ragidx.report.progress import Figures, ProgressView

            self.figures = Figures()
            self.progress = ProgressView(self.console, self.figures, self.get_time)
            self.progress.add_task("indexing", total=None, found=0, left=None)
            self.progress.start()

    def _stop(self, summary: RunSummary | None) -> None:
        if self.progress is not None and self.figures is not None:
            if summary is not None:
                # Requests are counted once more at the end (the dims probe, the last
                # retries): the last frame shows the summary's figures.
                f = self.figures
                f.requests = summary.requests if f.requests is not None else None
                f.retries, f.rate_limited = summary.retries, summary.rate_limited
            self.progress.stop()  # drawing the last frame
            self.progress = None

    def _refresh(self, *, force: bool = False) -> None:
        """Draw now, unless a frame was drawn in the last tenth of a second (Rich also draws
        ten times a second on its own, from the figures as they are then)."""
        if self.progress is None:
            return
        now = self.progress.get_time()
        # Events come by the thousand a second: a frame each would be most of the run's work.
        if force or now - self.updated >= _UPDATE_EVERY:
            self.updated = now
            self.progress.refresh()

    def _file(self, event: FileDone) -> None:
        if (f := self.figures) is not None:
            f.done += 1
            f.worked += event.announced
            if event.status is FileStatus.INDEXED:
                f.chunks += event.chunks
                f.tokens += event.tokens
            if not event.announced and not f.walked:
                f.found += 1
            self._refresh(force=event.status is FileStatus.FAILED)
        show = event.status is FileStatus.FAILED or (
            self.verbose and event.status is not FileStatus.UNCHANGED
        )
        if show:
            style = _STYLES[event.status]
            reason = f": {markup_escape(_with_flag(event.reason))}" if event.reason else ""
            shown = markup_escape(display_path(event.path))
            self.console.print(
                f"[{style}]{event.status.value:>9}[/] {shown}{reason}",
                highlight=False,
            )


def _with_flag(reason: str) -> str:
    """The core's reason, with the option that changes it where there is one."""
    if reason.startswith(TOO_LARGE_DOCUMENT):
        return f"{reason}; --max-document-size raises the limit"
    if reason.startswith(TOO_LARGE):
        return f"{reason}; --max-file-size raises the limit"
    return reason


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
