"""A run that fails before it stores anything leaves nothing behind, and takes nothing that
was there before."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import Cli, db_rows, write

from ragidx.store import Footprint
from ragidx.store.lock import WriterLock
from ragidx.testing.server import Faults, serve


def tree_of(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_missing_path_leaves_no_index_lock_or_directory(cli: Cli, work: Path) -> None:
    result = cli("index", "nosuchdir")
    assert result.exit_code == 2
    assert "error: nosuchdir: no such file or directory" in result.stderr
    assert tree_of(work) == set()
    stats = cli("stats")
    assert stats.exit_code == 2 and "error: no index at .ragidx/index.db" in stats.stderr


def test_no_directory_is_made_for_a_db_given(cli: Cli, work: Path) -> None:
    # Only the default's `.ragidx/` is made (and taken back): see test_db_path.
    write(work, {"docs/a.md": "# A\n\nalpha\n"})
    assert cli("index", "docs", "nosuchdir", "--db", "out/deeper/x.db").exit_code == 2
    assert tree_of(work) == {"docs", "docs/a.md"}


def test_a_file_that_is_not_an_index_is_kept_and_no_lock_is_left(cli: Cli, work: Path) -> None:
    write(work, {"notdb.txt": "just text\n", "docs/a.md": "# A\n\nalpha\n"})
    result = cli("index", "docs", "--db", "notdb.txt")
    assert result.exit_code == 2 and "not a database" in result.stderr
    assert (work / "notdb.txt").read_text() == "just text\n"
    assert tree_of(work) == {"notdb.txt", "docs", "docs/a.md"}


def test_what_existed_before_the_run_stays(cli: Cli, work: Path) -> None:
    write(work, {".ragidx/notes.txt": "mine\n"})
    assert cli("index", "nosuchdir").exit_code == 2
    assert tree_of(work) == {".ragidx", ".ragidx/notes.txt"}


def test_a_failed_run_on_an_index_with_files_keeps_it_whole(cli: Cli, work: Path) -> None:
    write(work, {"docs/a.md": "# A\n\nalpha\n"})
    assert cli("index", "docs", "--db", "idx.db", "-q").exit_code == 0
    before = tree_of(work)
    assert cli("index", "nosuchdir", "--db", "idx.db").exit_code == 2
    assert tree_of(work) == before  # the lock of the first run included
    stats = json.loads(cli("stats", "--db", "idx.db", "--json").stdout)
    assert stats["files"]["indexed"] == 1 and stats["chunks"] == 1


def test_a_refused_api_key_leaves_nothing(cli: Cli, work: Path) -> None:
    write(work, {"docs/a.md": "# A\n\nalpha\n", "docs/empty.md": ""})
    with serve(Faults(dims=8, api_key="sk-right")) as server:
        result = cli(
            "index", "docs", "--provider", "openai", "--base-url", server.url + "/v1",
            "--model", "m",
        )  # fmt: skip
    assert result.exit_code == 2 and "HTTP 401" in result.stderr
    assert tree_of(work) == {"docs", "docs/a.md", "docs/empty.md"}


def test_an_index_this_run_filled_is_never_taken_back(cli: Cli, work: Path) -> None:
    write(work, {"docs/a.md": "# A\n\nalpha\n"})
    footprint = Footprint.before(work / ".ragidx" / "index.db")
    assert footprint.new_dirs == (work / ".ragidx",)
    assert cli("index", "docs", "-q").exit_code == 0
    assert footprint.take_back() is False
    assert db_rows(work / ".ragidx" / "index.db", "SELECT count(*) FROM files") == [(1,)]


def test_stats_on_an_empty_index_says_so(cli: Cli, work: Path) -> None:
    (work / "empty").mkdir()
    assert cli("index", "empty", "--db", "idx.db", "-q").exit_code == 0
    result = cli("stats", "--db", "idx.db")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "index idx.db: empty, no file indexed yet"
    assert "None" not in result.stdout


def test_a_waiter_on_a_removed_lock_file_takes_the_new_one(work: Path) -> None:
    db = work / "idx.db"
    first, waiter, newcomer = WriterLock(db), WriterLock(db), WriterLock(db)
    assert first.try_acquire()
    assert not waiter.try_acquire()  # it holds the file open, waiting
    first.remove()
    first.release()
    assert newcomer.try_acquire()  # a new file at the path
    assert not waiter.try_acquire()  # the old file is free, but no longer the lock
    newcomer.release()
    assert waiter.try_acquire()
    assert os.path.samefile(waiter.path, db.with_name("idx.db.lock"))
    waiter.release()
