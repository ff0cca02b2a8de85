"""What a person sees: Rich progress and summary rendered to a fake terminal, JSON lines."""

from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path

from rich.console import Console

from ragidx.events import (
    BatchEmbedded,
    FileDiscovered,
    FileDone,
    FilesUnchanged,
    RunFinished,
    RunStarted,
    WalkFinished,
)
from ragidx.models import FileStatus, RunSummary
from ragidx.report import JsonLinesReporter, RichReporter


def _run_events(cwd: Path) -> list[object]:
    summary = RunSummary(run_id=7, chunks=12, tokens=3400, requests=2, seconds=1.5)
    summary.counts[FileStatus.INDEXED] = 2
    summary.counts[FileStatus.FAILED] = 1
    summary.counts[FileStatus.UNCHANGED] = 2
    return [
        RunStarted(7, ("docs",), "hash", "ragidx-hash-v1", 1024),
        FileDiscovered(cwd / "docs/a.md"),
        FileDiscovered(cwd / "docs/b.md"),
        FileDiscovered(cwd / "docs/c.md"),
        BatchEmbedded(12, 3400, 0.01),
        FileDone(cwd / "docs/a.md", FileStatus.INDEXED, 7, 2000, None, "utf-8"),
        FileDone(cwd / "docs/b.md", FileStatus.FAILED, 0, 0, "read error: [red]boom", None),
        FileDone(cwd / "docs/c.md", FileStatus.INDEXED, 5, 1400, None, "utf-8"),
        FilesUnchanged(
            [str(cwd / "docs/d.md"), str(cwd / "docs/e.md")], [3, 4], [None, "1 chunk split"]
        ),
        WalkFinished(5),
        RunFinished(summary),
    ]


def test_rich_reporter_on_a_terminal(work: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    clock = itertools.count()  # not a generator: Rich's refresh thread reads it too
    reporter = RichReporter(console, progress=True, get_time=lambda: float(next(clock)))
    for event in _run_events(work):
        reporter(event)  # type: ignore[arg-type]
    reporter.close()
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # cursor control
    assert "indexing" in screen and re.search(r"12 chunks, \d+/s · .* · 3,400 tokens", screen)
    assert "5/5 files" in screen  # unchanged files come found and done, in bunches
    assert "failed docs/b.md: read error: [red]boom" in screen  # markup in reasons is shown
    lines = [line.split() for line in screen.splitlines()]
    assert ["indexed", "2"] in lines and ["failed", "1"] in lines and ["chunks", "12"] in lines
    assert ["seconds", "1.50"] in lines


def test_rich_reporter_without_progress_has_no_bar(work: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    reporter = RichReporter(console, progress=False)
    for event in _run_events(work):
        reporter(event)  # type: ignore[arg-type]
    screen = out.getvalue()
    assert "indexing" not in screen and "\x1b[" not in screen
    assert screen.splitlines()[0] == "   failed docs/b.md: read error: [red]boom"


def test_rich_reporter_names_the_option_that_lifts_a_skip(work: Path) -> None:
    """The index holds the core's words; a person is told which option changes the outcome."""
    out = io.StringIO()
    reporter = RichReporter(Console(file=out, width=200), progress=False, verbose=True)
    reason = "larger than the size limit (2.9 KiB > 2.0 KiB)"
    reporter(FileDone(str(work / "big.txt"), FileStatus.SKIPPED, reason=reason))
    shown = f"  skipped big.txt: {reason}; --max-file-size raises the limit"
    assert out.getvalue().splitlines() == [shown]


def test_json_lines_reporter(work: Path) -> None:
    out = io.StringIO()
    reporter = JsonLinesReporter(out)
    for event in _run_events(work):
        reporter(event)  # type: ignore[arg-type]
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["file"] * 5 + ["summary"]
    assert records[1] == {
        "event": "file",
        "path": "docs/b.md",
        "status": "failed",
        "chunks": 0,
        "tokens": 0,
        "reason": "read error: [red]boom",
    }
    assert records[4] == {
        "event": "file",
        "path": "docs/e.md",
        "status": "unchanged",
        "chunks": 4,
        "tokens": 0,
        "reason": "1 chunk split",
    }
    assert records[5]["indexed"] == 2 and records[5]["failed"] == 1 and records[5]["files"] == 5


def test_json_lines_go_out_in_bunches_but_soon(work: Path) -> None:
    now = [0.0]
    out = io.StringIO()
    reporter = JsonLinesReporter(out, clock=lambda: now[0])
    done = FileDone(str(work / "a.md"), FileStatus.UNCHANGED)
    reporter(done)
    reporter(done)
    assert out.getvalue() == ""  # held: one write for many lines
    now[0] = 0.06
    reporter(BatchEmbedded(1, 1, 0.1))  # any event after 50 ms lets them out
    assert len(out.getvalue().splitlines()) == 2
    for _ in range(JsonLinesReporter.FLUSH_LINES):
        reporter(done)
    assert len(out.getvalue().splitlines()) == 2 + JsonLinesReporter.FLUSH_LINES
    reporter(done)
    reporter.close()  # and what is left, at the end
    assert len(out.getvalue().splitlines()) == 3 + JsonLinesReporter.FLUSH_LINES
