"""Paths from a list (stdin), what a list covers, and search after files are deleted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from helpers import Cli, db_rows, write

DOCS = {
    "docs/d1.md": "# gamma 1\n\nalpha words one\n",
    "docs/d2.md": "# gamma 2\n\nbeta words two\n",
    "docs/sub/s.md": "# sub\n\ndelta words\n",
    "docs/notes.txt": "epsilon\n",
    "other/o.md": "# other\n\nzeta words\n",
}


def find_md(root: Path) -> str:
    return "".join(f"{p.relative_to(root.parent)}\n" for p in sorted(root.rglob("*.md")))


def indexed(db: str = "idx.db") -> set[str]:
    return {os.path.relpath(p) for (p,) in db_rows(Path(db), "SELECT path FROM files")}


def test_a_list_that_covers_a_directory_removes_what_it_no_longer_names(
    cli: Cli, work: Path
) -> None:
    write(work, DOCS)
    assert cli("index", "other", "docs/notes.txt", "--db", "idx.db").exit_code == 0
    listing = find_md(work / "docs")
    first = cli("index", "-", "--covers", "docs", "--db", "idx.db", "--json", input=listing)
    assert first.exit_code == 0
    assert first.files()["docs/notes.txt"]["status"] == "removed"
    assert first.files()["docs/notes.txt"]["reason"] == "not in the paths given (--covers)"
    (work / "docs/d2.md").unlink()
    shutil.rmtree(work / "docs/sub")
    again = cli(
        "index", "-", "--covers", "docs", "--db", "idx.db", "--json", input=find_md(work / "docs")
    )
    assert again.exit_code == 0, again.stderr
    assert {p: r["status"] for p, r in again.files().items()} == {
        "docs/d1.md": "unchanged",
        "docs/d2.md": "removed",
        "docs/sub/s.md": "removed",
    }
    assert again.files()["docs/d2.md"]["reason"] == "deleted"
    # Outside what the list covers, nothing is touched.
    assert indexed() == {"docs/d1.md", "other/o.md"}
    hits = cli("search", "gamma 2", "--db", "idx.db", "--json", "-k", "5").json_lines()
    assert "docs/d2.md" not in {h["path"] for h in hits}


def test_a_list_without_covers_removes_only_the_missing_paths_it_names(
    cli: Cli, work: Path
) -> None:
    # `git diff --name-only | ragidx index -`: a list of changed files, not of every file.
    write(work, DOCS)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    (work / "docs/d1.md").write_text("# gamma 1\n\nedited\n", encoding="utf-8")
    (work / "docs/d2.md").unlink()
    result = cli("index", "-", "--db", "idx.db", "--json", input="docs/d1.md\ndocs/d2.md\n")
    assert result.exit_code == 0, result.stderr
    assert {p: r["status"] for p, r in result.files().items()} == {
        "docs/d1.md": "indexed",
        "docs/d2.md": "removed",
    }
    assert indexed() == {"docs/d1.md", "docs/notes.txt", "docs/sub/s.md"}


def test_a_directory_in_a_covering_list_is_walked_and_swept_as_ever(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    listing = "docs/sub\ndocs/d1.md\n"
    result = cli("index", "-", "--covers", "docs", "--db", "idx.db", "--json", input=listing)
    assert result.exit_code == 0
    assert {p: r["status"] for p, r in result.files().items()} == {
        "docs/sub/s.md": "unchanged",
        "docs/d1.md": "unchanged",
        "docs/d2.md": "removed",
        "docs/notes.txt": "removed",
    }


def test_a_dry_run_with_covers_reports_and_keeps(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    result = cli(
        "index", "-", "--covers", "docs", "--dry-run", "--db", "idx.db", "--json",
        input="docs/d1.md\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert {p for p, r in result.files().items() if r["status"] == "removed"} == {
        "docs/d2.md",
        "docs/notes.txt",
        "docs/sub/s.md",
    }
    assert indexed() == {"docs/d1.md", "docs/d2.md", "docs/notes.txt", "docs/sub/s.md"}


def test_search_leaves_out_a_file_deleted_since_it_was_indexed(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    before = cli("search", "gamma 2", "--db", "idx.db", "--json", "-k", "3").json_lines()
    assert before[0]["path"] == "docs/d2.md"
    (work / "docs/d2.md").unlink()
    after = cli("search", "gamma 2", "--db", "idx.db", "--json", "-k", "3").json_lines()
    assert {h["path"] for h in after} == {"docs/d1.md", "docs/sub/s.md", "docs/notes.txt"}


def test_search_of_an_index_moved_away_from_its_files_still_answers(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    shutil.rmtree(work / "docs")  # as on another machine, where none of the files is
    hits = cli("search", "gamma 2", "--db", "idx.db", "--json", "-k", "2").json_lines()
    assert [h["path"] for h in hits][:1] == ["docs/d2.md"] and len(hits) == 2


def test_nothing_listening_fails_at_once_naming_the_url(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    result = cli(
        "index", "docs", "--db", "idx.db", "--provider", "ollama",
        "--base-url", "http://127.0.0.1:9",
    )  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "error: cannot connect to http://127.0.0.1:9/api/embed:"
        " All connection attempts failed (3 attempts)"
    )
    assert lines[1].startswith("hint: is the server running")
