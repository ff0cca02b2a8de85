"""Entries of a walked directory that are no regular file (links not followed, FIFOs,
sockets, devices, symlink loops) are reported once a run as skipped, with the reason; they
are never stored, so an unchanged directory is still planned from its stamp."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import Cli, db_rows, traced_plans, write

from ragidx.pipeline.planner import Done, Unchanged

LINK = "symbolic link (use --follow-symlinks)"


def _tree(work: Path) -> None:
    write(work, {"docs/a.md": "# A\n\nalpha\n", "docs/b.md": "# B\n\nbeta\n"})
    write(work, {"docs/sub/c.md": "c\n"})
    os.mkfifo(work / "docs/pipe")
    (work / "docs/link.md").symlink_to("a.md")
    (work / "docs/loop").symlink_to("loop")


def _files(cli: Cli, *args: str) -> tuple[list[tuple[str, str, str | None]], dict[str, object]]:
    result = cli("index", "docs", "--db", "idx.db", "--json", *args)
    assert result.exit_code == 0, result.stderr
    lines = [(r["path"], r["status"], r.get("reason")) for r in result.files().values()]
    return lines, result.summary()


def test_each_is_reported_once_a_run_and_never_stored(cli: Cli, work: Path) -> None:
    _tree(work)
    first, summary = _files(cli)
    assert first == [
        ("docs/a.md", "indexed", None),
        ("docs/b.md", "indexed", None),
        ("docs/link.md", "skipped", LINK),
        ("docs/loop", "skipped", LINK),
        ("docs/pipe", "skipped", "not a regular file: FIFO"),
        ("docs/sub/c.md", "indexed", None),
    ]
    assert summary["files"] == 6 and summary["skipped"] == 3
    assert db_rows(work / "idx.db", "SELECT count(*) FROM files") == [(3,)]
    stamps = dict(db_rows(work / "idx.db", "SELECT dir, digest FROM dir_stamps"))
    assert stamps[str(work / "docs")] is not None

    again, summary = _files(cli)
    assert [(p, s) for p, s, _ in again] == [
        ("docs/a.md", "unchanged"),
        ("docs/b.md", "unchanged"),
        ("docs/link.md", "skipped"),
        ("docs/loop", "skipped"),
        ("docs/pipe", "skipped"),
        ("docs/sub/c.md", "unchanged"),
    ]
    assert summary["skipped"] == 3

    followed, _ = _files(cli, "--follow-symlinks")
    assert dict((p, (s, r)) for p, s, r in followed)["docs/loop"] == ("skipped", "symlink loop")


def test_a_directory_with_them_is_planned_from_its_stamp(cli: Cli, work: Path) -> None:
    _tree(work)
    assert cli("index", "docs", "--db", "idx.db", "-q").exit_code == 0
    plans, statements = traced_plans(work / "idx.db", "docs")
    assert [s for s in statements if "FROM files WHERE dir" in s] == []  # no row per file
    unchanged = [p for plan in plans if isinstance(plan, Unchanged) for p in plan.paths]
    assert [Path(p).name for p in unchanged] == ["a.md", "b.md", "c.md"]
    skipped = [Path(plan.path).name for plan in plans if isinstance(plan, Done)]
    assert skipped == ["link.md", "loop", "pipe"]


def test_a_file_indexed_through_a_link_is_removed_once_the_link_is_not_followed(
    cli: Cli, work: Path
) -> None:
    _tree(work)
    followed, _ = _files(cli, "--follow-symlinks")
    assert ("docs/link.md", "indexed", None) in followed
    plain, summary = _files(cli)
    assert ("docs/link.md", "removed", LINK) in plain
    assert summary["removed"] == 1
    assert db_rows(work / "idx.db", "SELECT count(*) FROM files WHERE path LIKE '%link.md'") == [
        (0,)
    ]
    plain, _ = _files(cli)
    assert ("docs/link.md", "skipped", LINK) in plain
