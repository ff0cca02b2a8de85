"""Directory stamps: a re-run plans an unchanged directory as a whole, exactly as it would file
by file, and any change to a directory's files drops its stamp."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from helpers import Cli, db_rows, traced_plans, write

from ragidx.models import FileStatus
from ragidx.pipeline.planner import Done, Unchanged
from ragidx.store import FileWrite, SqliteStore, listing_digest

TREE: dict[str, str | bytes] = {
    "docs/a.md": "# A\n\nalpha words here\n",
    "docs/b.md": "# B\n\nbeta words here\n",
    "docs/empty.md": "",
    "docs/logo.png": b"\x89PNG\r\n\x1a\n\0\0\0binary",
    "docs/z.md": "# Z\n\nzeta words here\n",
    "docs/deep/c.md": "# C\n\ngamma\n",
    "docs/deep/deeper/d.txt": "delta\n",
    "docs/other/e.md": "# E\n\nepsilon\n",
}


def stamped(work: Path) -> dict[str, bytes | None]:
    rows = db_rows(work / "idx.db", "SELECT dir, digest FROM dir_stamps")
    return {Path(d).relative_to(work).as_posix(): digest for d, digest in rows}


def file_lines(result_lines: list[dict[str, object]]) -> list[dict[str, object]]:
    return [r for r in result_lines if r["event"] == "file"]


def test_every_directory_is_stamped_after_a_run(cli: Cli, work: Path) -> None:
    write(work, TREE)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    stamps = stamped(work)
    assert set(stamps) == {"docs", "docs/deep", "docs/deep/deeper", "docs/other"}
    assert all(digest is not None for digest in stamps.values())


def test_a_rerun_from_stamps_reports_what_a_rerun_file_by_file_reports(
    cli: Cli, work: Path
) -> None:
    write(work, TREE)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    assert len(stamped(work)) == 4
    from_stamps = cli("index", "docs", "--db", "idx.db", "--json")
    _forget_stamps(work / "idx.db")
    by_file = cli("index", "docs", "--db", "idx.db", "--json")
    assert from_stamps.exit_code == by_file.exit_code == 0
    lines = file_lines(from_stamps.json_lines())
    assert lines == file_lines(by_file.json_lines())
    assert [r["path"] for r in lines] == [
        "docs/a.md",
        "docs/b.md",
        "docs/empty.md",
        "docs/logo.png",
        "docs/z.md",
        "docs/deep/c.md",
        "docs/deep/deeper/d.txt",
        "docs/other/e.md",
    ]
    status = {r["path"]: (r["status"], r.get("reason")) for r in lines}
    assert status["docs/empty.md"] == ("skipped", "empty file")
    assert status["docs/logo.png"][0] == "skipped"
    assert status["docs/z.md"] == ("unchanged", None)
    summary = from_stamps.summary()
    assert summary["unchanged"] == 6 and summary["skipped"] == 2
    assert all(r["chunks"] > 0 for r in lines if r["status"] == "unchanged")


def test_an_unchanged_directory_is_planned_without_reading_its_files_rows(
    cli: Cli, work: Path
) -> None:
    write(work, TREE)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    (work / "docs/other/e.md").write_text("# E\n\nepsilon, edited\n", encoding="utf-8")
    plans, statements = traced_plans(work / "idx.db", "docs")
    per_file = [s for s in statements if "FROM files WHERE dir" in s]
    # Only the edited file's directory is compared file by file.
    assert len(per_file) == 1 and str(work / "docs/other") in per_file[0]
    unchanged = [p for plan in plans if isinstance(plan, Unchanged) for p in plan.paths]
    assert len(unchanged) == 5
    skipped = [plan.path for plan in plans if isinstance(plan, Done)]
    assert [Path(p).name for p in skipped] == ["empty.md", "logo.png"]


def test_any_change_to_a_directorys_files_drops_its_stamp_and_only_its(
    cli: Cli, work: Path
) -> None:
    write(work, TREE)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    before = stamped(work)
    store = SqliteStore.open(work / "idx.db")
    try:
        path = str(work / "docs/deep/c.md")
        store.commit([FileWrite(FileStatus.FAILED, path, reason="test")], 1)
        assert set(stamped(work)) == set(before) - {"docs/deep"}
        store.commit([FileWrite(FileStatus.REMOVED, str(work / "docs/other/e.md"))], 1)
        assert set(stamped(work)) == set(before) - {"docs/deep", "docs/other"}
        # The stamps come back for what is left, and a directory with a failed file has none.
        store.stamp_dirs()
        after = stamped(work)
        assert after["docs/deep"] is None and "docs/other" not in after
        assert after["docs"] == before["docs"]
    finally:
        store.close()


def test_edits_that_keep_names_and_sizes_are_still_seen(cli: Cli, work: Path) -> None:
    write(work, TREE)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    target = work / "docs/b.md"
    target.write_text("# B\n\nbeta wordz here\n", encoding="utf-8")  # same size
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    result = cli("index", "docs", "--db", "idx.db", "--json")
    assert result.files()["docs/b.md"]["status"] == "indexed"
    assert result.summary()["unchanged"] == 5
    # A file added, and one deleted, in directories that were stamped.
    (work / "docs/deep/new.md").write_text("# New\n\nnovel\n", encoding="utf-8")
    (work / "docs/deep/deeper/d.txt").unlink()
    result = cli("index", "docs", "--db", "idx.db", "--json")
    files = result.files()
    assert files["docs/deep/new.md"]["status"] == "indexed"
    assert files["docs/deep/deeper/d.txt"]["status"] == "removed"
    assert result.summary()["unchanged"] == 5


def test_failed_files_are_retried_although_their_directory_is_otherwise_unchanged(
    cli: Cli, work: Path, poison_provider: None
) -> None:
    write(work, {**TREE, "docs/bad.md": "# Bad\n\nPOISON\n"})
    first = cli("index", "docs", "--db", "idx.db", "--provider", "poison", "--json")
    assert first.files()["docs/bad.md"]["status"] == "failed"
    again = cli("index", "docs", "--db", "idx.db", "--provider", "poison", "--json")
    assert again.exit_code == 1
    assert again.files()["docs/bad.md"]["status"] == "failed"
    assert stamped(work)["docs"] is None


def test_the_digest_covers_paths_sizes_and_mtimes_in_order() -> None:
    files = [("/d/a", 1, 10), ("/d/b", 2, 20)]
    digest = listing_digest(files)
    assert listing_digest(list(files)) == digest
    assert listing_digest(files[::-1]) != digest
    assert listing_digest([("/d/a", 1, 10), ("/d/b", 2, 21)]) != digest
    assert listing_digest([("/d/a", 2, 10), ("/d/b", 2, 20)]) != digest
    assert listing_digest([("/d/a", 1, 10), ("/d/c", 2, 20)]) != digest
    assert listing_digest(files[:1]) != digest


def _forget_stamps(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM dir_stamps")
    conn.close()


def test_a_new_chunk_size_rechunks_files_of_stamped_directories(cli: Cli, work: Path) -> None:
    write(work, TREE)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    result = cli("index", "docs", "--db", "idx.db", "--json", "--chunk-tokens", "64")
    assert result.exit_code == 0, result.stderr
    statuses = {p: r["status"] for p, r in result.files().items()}
    assert statuses["docs/a.md"] == statuses["docs/other/e.md"] == "indexed"
    assert result.summary()["unchanged"] == 0


def test_only_the_directories_that_changed_are_stamped_again(cli: Cli, work: Path) -> None:
    write(work, TREE)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    before = stamped(work)
    assert db_rows(work / "idx.db", "SELECT count(*) FROM unstamped") == [(0,)]
    (work / "docs/deep/c.md").write_text("# C\n\ngamma, longer now\n", encoding="utf-8")
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    after = stamped(work)
    assert after["docs/deep"] != before["docs/deep"]
    assert {d: s for d, s in after.items() if d != "docs/deep"} == {
        d: s for d, s in before.items() if d != "docs/deep"
    }
    store = SqliteStore.open(work / "idx.db")
    try:
        assert store.stamp_dirs() == 0  # nothing left over
    finally:
        store.close()


def test_an_index_from_before_stamps_is_stamped_by_its_next_run(cli: Cli, work: Path) -> None:
    write(work, TREE)
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    conn = sqlite3.connect(work / "idx.db")
    with conn:  # back to schema 4, as an index written before this version would be
        for trigger in ("delete", "update"):  # 8: the vector file's generation
            conn.execute(f"DROP TRIGGER embeddings_{trigger}_moves")
        conn.execute("DROP TABLE vector_state")
        conn.execute("DROP VIEW ragidx_progress")  # 7: the runs' progress
        for column in ("worker", "shard", "heartbeat_at", "files_done", "files_failed"):
            conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        conn.execute("ALTER TABLE runs DROP COLUMN in_flight")
        for table, column in (("chunks", "page_start"), ("chunks", "page_end")):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        for column in ("unit", "pages"):
            conn.execute(f"ALTER TABLE files DROP COLUMN {column}")
        for trigger in ("insert", "update", "delete"):
            conn.execute(f"DROP TRIGGER files_{trigger}_unstamps")
        conn.execute("DROP TABLE dir_stamps")
        conn.execute("DROP TABLE unstamped")
        conn.execute("PRAGMA user_version = 4")
    conn.close()
    result = cli("index", "docs", "--db", "idx.db", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.summary()["unchanged"] == 6
    stamps = stamped(work)
    assert len(stamps) == 4 and all(digest is not None for digest in stamps.values())
