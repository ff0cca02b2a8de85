"""The progress display: a bar of files on one line, the run's figures on the next.

Two lines, so that at 80 columns nothing is cut: the bar gives way first, then the figures
at the end of the second line (the least needed are last). Loaded only when a bar is shown.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column
from rich.text import Text

__all__ = ["Figures", "ProgressView"]


@dataclass(slots=True)
class Figures:
    """What the two lines show, counted by the reporter as the events come."""

    done: int = 0
    worked: int = 0
    """Files done that were read or written: not those found and done at once (unchanged)."""
    found: int = 0
    """Files found so far; once `walked`, the run's total."""
    walked: bool = False
    chunks: int = 0
    tokens: int = 0
    requests: int | None = None
    """None until the first batch comes back (a no-op run sends nothing)."""
    retries: int = 0
    rate_limited: int = 0

    def line(self, seconds: float) -> str:
        rate = self.chunks / seconds if seconds > 0 else 0.0
        parts = [f"{self.chunks:,} chunks, {rate:,.0f}/s"]
        if self.requests is not None:
            parts += [
                f"{self.rate_limited:,} 429s",
                f"{self.retries:,} {'retry' if self.retries == 1 else 'retries'}",
                f"{self.requests:,} request{'' if self.requests == 1 else 's'}",
            ]
        parts.append(f"{_short(self.tokens)} tokens")
        return " · ".join(parts)


class _Files(ProgressColumn):
    """`done/total files`; while the walk goes on, `done/found+ files`."""

    def render(self, task: Task) -> Text:
        done = int(task.completed)
        if task.total is None:
            return Text(f"{done:,}/{task.fields['found']:,}+ files")
        return Text(f"{done:,}/{int(task.total):,} files")


class _Eta(ProgressColumn):
    """Time left, once the walk has given a total: before it, no figure could be trusted."""

    max_refresh = 1.0  # a figure that jumps ten times a second cannot be read

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("ETA after walk", style="progress.remaining")
        if task.finished:
            return Text("done", style="progress.remaining")
        left: float | None = task.fields["left"]
        if left is None:
            return Text("ETA -:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(left + 0.5), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"ETA {hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class _Pace:
    """Files worked on a second, over the last `WINDOW` seconds, and so the time left.

    Not Rich's speed, which counts every file done: unchanged files come done by the
    thousand at once, and counted in, they make a re-run's first estimate far too short.
    Once the walk is over every file left is one to work on, so this pace is the one."""

    WINDOW = 30.0

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def left(self, now: float, worked: int, files_left: int | None) -> float | None:
        """Seconds left for `files_left` (None: the walk goes on, so no figure yet)."""
        samples = self.samples
        samples.append((now, worked))
        while now - samples[0][0] > self.WINDOW:
            samples.popleft()
        then, before = samples[0]
        if files_left is None or worked == before or now == then:
            return None
        return files_left / ((worked - before) / (now - then))


class ProgressView(Progress):
    """Rich's `Progress` with one task (the run) and a line of figures under it.

    Each frame is drawn from `figures` as they are when it is drawn, so the reporter only
    counts: a frame drawn while the run waits (on a slow answer, a 429) is not stale."""

    def __init__(
        self, console: Console, figures: Figures, get_time: Callable[[], float] | None
    ) -> None:
        self.figures = figures
        self.pace = _Pace()
        super().__init__(
            SpinnerColumn(),
            TextColumn("indexing"),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=10)),
            _Files(),
            TimeElapsedColumn(),
            _Eta(),
            console=console,
            redirect_stdout=False,
            redirect_stderr=False,
            get_time=get_time,
            expand=True,
        )

    def get_renderables(self) -> Iterable[RenderableType]:
        f = self.figures
        seconds = 0.0
        for task in self.tasks:  # the one: the run
            left = self.pace.left(self.get_time(), f.worked, f.found - f.done if f.walked else None)
            total = f.found if f.walked else None
            self.update(task.id, total=total, completed=f.done, found=f.found, left=left)
            seconds = task.elapsed or 0.0
        yield self.make_tasks_table(self.tasks)
        yield Text("  " + f.line(seconds), no_wrap=True, overflow="ellipsis")


def _short(n: int) -> str:
    """12,345 as it is; 8,214,330 as 8.21M (the second line has room for so much)."""
    if n < 1_000_000:
        return f"{n:,}"
    if n < 1_000_000_000:
        return f"{n / 1e6:.2f}M"
    return f"{n / 1e9:.2f}G"
