"""The progress bar as a person sees it at 80 columns: while the walk goes on, once it is over,
and at the end, where its figures are the summary's."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

from helpers import write
from rich.console import Console

from ragidx import HashEmbedder, IndexConfig, WalkConfig, index
from ragidx.events import (
    BatchEmbedded,
    Event,
    FileDiscovered,
    FileDone,
    FilesUnchanged,
    RunFinished,
    RunStarted,
    WalkFinished,
)
from ragidx.models import FileStatus, RunSummary
from ragidx.read.text import LARGE_FILE
from ragidx.report import RichReporter

# What Rich's Live writes before each frame: back to the start of the last one, clearing it.
_REDRAW = re.compile(r"\r\x1b\[2K(?:\x1b\[1A\x1b\[2K)*")
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Screen:
    """An 80-column terminal, a clock the test moves, and a reporter drawing on them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.out = io.StringIO()
        console = Console(file=self.out, force_terminal=True, width=80, color_system=None)
        self.reporter = RichReporter(console, progress=True, get_time=lambda: self.now)

    def __call__(self, event: Event) -> None:
        self.reporter(event)

    def frame(self) -> list[str]:
        """The lines of the bar as Rich's next tick (ten a second) draws them."""
        if self.reporter.progress is not None:
            self.reporter.progress.refresh()
        last = _REDRAW.split(self.out.getvalue())[-1]
        return _CONTROL.sub("", last).rstrip("\n").splitlines()


def _fields(line: str) -> str:
    return " ".join(line.split())


def _fits(lines: list[str]) -> None:
    # Nothing cut at 80 columns: Rich ends a cut line with an ellipsis.
    assert all(len(line) <= 80 and "…" not in line for line in lines), lines


def test_during_the_walk_the_total_is_what_was_found_so_far() -> None:
    screen = Screen()
    screen(RunStarted(1, ("docs",), "hash", "m", 64))
    for n in range(3549):
        screen(FileDiscovered(f"/docs/{n}.md"))
    screen(FilesUnchanged(["/docs/u1.md", "/docs/u2.md"], [4, 5], [None, None]))
    for n in range(3275):
        screen.now += 3 / 3275
        screen(FileDone(f"/docs/{n}.md", FileStatus.INDEXED, 2, 500))
    screen(BatchEmbedded(6000, 3_000_000, 0.5, requests=1234, retries=56, rate_limited=7))
    bar, figures = screen.frame()
    _fits([bar, figures])
    # 3,277 done of 3,551 found, and more may come: no total, so no time left either.
    assert "3,277/3,551+ files" in bar and "ETA after walk" in bar
    assert "0:00:03" in bar  # elapsed
    # Chunks of the files indexed (unchanged files' are not this run's), the rate, 429s.
    assert _fields(figures).startswith("6,550 chunks, 2,183/s · 7 429s · 56 retries")
    assert "1,234 requests" in figures and "1.64M tokens" in figures


def test_once_the_walk_is_over_the_total_is_known_and_the_time_left_shown() -> None:
    screen = Screen()
    screen(RunStarted(1, ("docs",), "hash", "m", 64))
    for n in range(38_427):
        screen(FileDiscovered(f"/docs/{n}.md"))
    screen(WalkFinished(38_427))
    for n in range(10_000):  # 1,000 files a second for 10 s
        screen.now += 0.001
        screen(FileDone(f"/docs/{n}.md", FileStatus.INDEXED, 1, 10))
    bar, figures = screen.frame()
    _fits([bar, figures])
    assert "10,000/38,427 files" in bar and "+" not in bar
    eta = re.search(r"ETA 0:00:(\d\d)", bar)
    assert eta is not None and 24 <= int(eta.group(1)) <= 33, bar  # 28,427 left at 1,000/s


def test_the_last_frame_shows_the_summary_chunks_and_requests() -> None:
    """The chunks of the files indexed, not the inputs embedded: a chunk the cache (or an
    identical chunk of the run) answered is a chunk of the index all the same."""
    screen = Screen()
    screen(RunStarted(1, ("docs",), "hash", "m", 64))
    screen(FilesUnchanged(["/docs/old.md"], [40], [None]))
    for name in ("a", "b", "c"):
        screen(FileDiscovered(f"/docs/{name}.md"))
    screen(BatchEmbedded(9, 900, 0.1, requests=2))  # b.md repeats a.md: 9 inputs for 14 chunks
    screen(FileDone("/docs/a.md", FileStatus.INDEXED, 5, 500))
    screen(FileDone("/docs/b.md", FileStatus.INDEXED, 5, 500))
    screen(FileDone("/docs/c.md", FileStatus.INDEXED, 4, 400))
    screen(FileDone("/docs/gone.md", FileStatus.REMOVED, announced=False))
    screen(WalkFinished(5))
    summary = RunSummary(run_id=1, chunks=14, tokens=1400, embedded=9, reused=5, requests=3)
    summary.counts[FileStatus.INDEXED] = 3
    summary.counts[FileStatus.UNCHANGED] = 1
    summary.counts[FileStatus.REMOVED] = 1
    screen.now = 2.0
    screen(RunFinished(summary))
    text = _CONTROL.sub("", _REDRAW.split(screen.out.getvalue())[-1])
    bar, figures, *table = text.splitlines()
    assert "5/5 files" in bar and "done" in bar
    # The request the run made last (a retry, the dims probe) is in the summary's count.
    assert _fields(figures) == "14 chunks, 7/s · 0 429s · 0 retries · 3 requests · 1,400 tokens"
    assert ["chunks", "14"] in [line.split() for line in table]


def test_a_run_that_sends_nothing_shows_no_request_figures() -> None:
    screen = Screen()
    screen(RunStarted(1, ("docs",), "hash", "m", 64))
    screen(FilesUnchanged([f"/docs/{n}.md" for n in range(100)], [1] * 100, [None] * 100))
    screen(WalkFinished(100))
    screen.reporter.close()
    bar, figures = screen.frame()
    assert "100/100 files" in bar
    assert _fields(figures) == "0 chunks, 0/s · 0 tokens"


def test_a_run_agrees_with_its_summary_on_unchanged_new_and_large_files(work: Path) -> None:
    """A real run: the last frame's files and chunks are the summary's, on a tree with files
    already indexed, new ones, copies of one another (their chunks are embedded once), and a
    file large enough to be read in segments."""
    rng = random.Random(5)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()

    def page(n: int) -> str:
        body = " ".join(rng.choice(words) for _ in range(rng.randrange(50, 400)))
        return f"# Page {n}\n\n{body}\n"

    write(work, {f"docs/old/{n}.md": page(n) for n in range(60)})
    config = IndexConfig(db_path=work / "idx.db", walk=WalkConfig(max_file_size=20 * 1024**2))
    index([work / "docs"], HashEmbedder(64), config)

    same = page(1000) * 20
    write(work, {f"docs/new/{n}.md": page(n) for n in range(60, 140)})
    write(work, {f"docs/copies/{n}.md": same for n in range(12)})
    paragraph = " ".join(rng.choice(words) for _ in range(300))
    big = "".join(f"## Part {n}\n\n{paragraph} {n}\n\n" for n in range(LARGE_FILE // 1500))
    write(work, {"docs/big.md": big})
    assert (work / "docs/big.md").stat().st_size > LARGE_FILE  # read in segments

    screen = Screen()
    walked: list[int] = []

    def both(event: Event) -> None:
        if isinstance(event, WalkFinished):
            walked.append(event.files)
        screen(event)

    summary = index([work / "docs"], HashEmbedder(64), config, both)
    assert summary.counts[FileStatus.UNCHANGED] == 60 and summary.counts[FileStatus.INDEXED] == 93
    assert summary.reused > 0  # the copies: fewer inputs embedded than chunks stored
    assert walked == [summary.files]
    text = _CONTROL.sub("", _REDRAW.split(screen.out.getvalue())[-1])
    bar, figures, *table = text.splitlines()
    _fits([bar, figures])
    assert f"{summary.files:,}/{summary.files:,} files" in bar
    assert _fields(figures).startswith(f"{summary.chunks:,} chunks, ")
    assert f"{summary.tokens:,} tokens" in figures or f"{summary.tokens / 1e6:.2f}M" in figures
    assert ["chunks", f"{summary.chunks:,}"] in [line.split() for line in table]


def test_the_total_comes_early_as_the_walk_runs_ahead_of_the_readers(work: Path) -> None:
    """The walk is not held back to the readers' pace (it once was, by a queue of a few
    files, so the total came only with the last files): here it is over while most files
    are still to be read."""
    write(work, {f"docs/{n // 500}/{n}.md": f"# Page {n}\n\nword {n}\n" for n in range(4000)})
    done_at_walk_end: list[int] = []
    done = [0]

    def count(event: Event) -> None:
        if isinstance(event, FileDone):
            done[0] += 1
        elif isinstance(event, WalkFinished):
            done_at_walk_end.append(done[0])
            assert event.files == 4000

    config = IndexConfig(db_path=work / "idx.db", dry_run=True)
    summary = index([work / "docs"], HashEmbedder(64), config, count)
    assert summary.files == 4000 and len(done_at_walk_end) == 1
    # Held to the readers, the walk would end with at least 1,900 files done.
    assert done_at_walk_end[0] < 1000, done_at_walk_end


def test_files_found_and_done_at_once_do_not_shorten_the_time_left() -> None:
    """A re-run: 30,000 unchanged files are done in the first second, then the 100 changed
    ones are read at 10 a second. The time left is that of the changed files."""
    screen = Screen()
    screen(RunStarted(1, ("docs",), "hash", "m", 64))
    for n in range(100):
        screen(FileDiscovered(f"/docs/changed/{n}.md"))
    paths = [f"/docs/same/{n}.md" for n in range(30_000)]
    screen(FilesUnchanged(paths, [1] * 30_000, [None] * 30_000))
    screen(WalkFinished(30_100))
    for n in range(40):
        screen.now += 0.1
        screen(FileDone(f"/docs/changed/{n}.md", FileStatus.INDEXED, 1, 10))
    bar, _ = screen.frame()
    assert "30,040/30,100 files" in bar
    eta = re.search(r"ETA 0:00:(\d\d)", bar)
    assert eta is not None and 5 <= int(eta.group(1)) <= 7, bar  # 60 left at 10 a second
