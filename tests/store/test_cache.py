"""The embedding cache: a chunk is embedded once ever, whatever files it is in and however
runs end; `ragidx gc` drops what no chunk uses; version 1 indexes are migrated into it.
The tests of behaviour run on SQLite and on Postgres (`index_db`); those of SQLite's files
(old versions, dry runs that leave the file's bytes, its query plans) on SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from helpers import DIMS, PARAGRAPHS, Cli, db_rows, doc_of, index_with, write
from pg import index_rows, stored_vectors_in

from ragidx.store import SqliteStore
from ragidx.store.migrations import MIGRATIONS
from ragidx.store.stamps import STAMP_COLUMNS
from ragidx.testing.server import Faults, expected_vector, serve


def _distinct_inputs(db: str) -> int:
    return int(index_rows(db, "SELECT count(DISTINCT coalesce(input, text)) FROM chunks")[0][0])


def _assert_exact(db: str, files: int) -> None:
    """Every stored vector is the test server's for its input, in `files` files."""
    rows = stored_vectors_in(db)
    assert len({path for path, _, _ in rows}) == files
    for _, text, vector in rows:
        assert np.allclose(vector, expected_vector(text, DIMS), atol=1e-6)


def test_an_edit_sends_only_the_changed_chunks(cli: Cli, work: Path, index_db: str) -> None:
    write(work, {f"docs/{name}.md": doc_of(PARAGRAPHS) for name in "ab"})
    with serve(Faults(dims=DIMS)) as server:
        first = index_with(cli, server, "--chunk-tokens", "32", db=index_db)
        assert first.exit_code == 0, first.stderr
        distinct = _distinct_inputs(index_db)
        # Two identical files: each distinct chunk goes to the server once.
        assert server.counters.inputs == distinct == first.summary()["embedded"]
        assert first.summary()["reused"] == first.summary()["chunks"] - distinct

        edited = [*PARAGRAPHS[:20], "A brand new paragraph in the middle.", *PARAGRAPHS[20:]]
        write(work, {"docs/a.md": doc_of(edited)})
        before = server.counters.inputs
        second = index_with(cli, server, "--chunk-tokens", "32", db=index_db)
        assert second.exit_code == 0, second.stderr
        sent = server.counters.inputs - before
        summary = second.summary()
        assert summary["indexed"] == 1 and summary["unchanged"] == 1
        assert sent == summary["embedded"] and 1 <= sent <= 3, sent
        assert summary["reused"] == summary["chunks"] - sent
    _assert_exact(index_db, 2)


def test_vectors_of_a_failed_file_are_kept_for_the_next_run(
    cli: Cli, work: Path, index_db: str
) -> None:
    write(work, {"docs/a.md": doc_of([*PARAGRAPHS[:10], "POISON here", *PARAGRAPHS[10:20]])})
    with serve(Faults(dims=DIMS, poison="POISON")) as server:
        first = index_with(cli, server, "--chunk-tokens", "32", db=index_db)
        assert first.exit_code == 1 and first.files()["docs/a.md"]["status"] == "failed"
        cached = index_rows(index_db, "SELECT count(*) FROM embeddings")[0][0]
        assert cached >= 5  # the chunks that were embedded are in the cache, file or not
        server.faults.poison = None
        before = server.counters.inputs
        second = index_with(cli, server, "--chunk-tokens", "32", db=index_db)
        assert second.exit_code == 0, second.stderr
        # Only the chunks that were refused (the poison and its overlap) go out again.
        refused = index_rows(index_db, "SELECT count(*) FROM chunks WHERE text LIKE '%POISON%'")
        assert server.counters.inputs - before == second.summary()["embedded"] == refused[0][0]
        assert 1 <= refused[0][0] <= 2
    _assert_exact(index_db, 1)


def test_stats_and_gc(cli: Cli, work: Path, index_db: str) -> None:
    write(work, {"docs/a.md": doc_of(PARAGRAPHS), "docs/b.md": doc_of(PARAGRAPHS[:5])})
    assert cli("index", "docs", "--db", index_db, "--chunk-tokens", "32").exit_code == 0
    (work / "docs/a.md").unlink()
    assert cli("index", "docs", "--db", index_db, "--chunk-tokens", "32").exit_code == 0
    stats = json.loads(cli("stats", "--db", index_db, "--json").stdout)
    assert stats["unused_vectors"] > 0
    assert stats["cached_vectors"] == stats["unused_vectors"] + _distinct_inputs(index_db)
    assert stats["last_run"]["summary"]["embedded"] == 0
    text = cli("stats", "--db", index_db).stdout
    assert "ragidx gc" in text and "reused from the cache" in text

    gc = cli("gc", "--db", index_db, "--json")
    assert gc.exit_code == 0, gc.stderr
    assert json.loads(gc.stdout)["vectors"] == stats["unused_vectors"]
    after = json.loads(cli("stats", "--db", index_db, "--json").stdout)
    assert after["unused_vectors"] == 0 and after["chunks"] == stats["chunks"]
    hits = cli("search", "Paragraph 3 says something", "--db", index_db, "--json").json_lines()
    assert hits and hits[0]["path"].endswith("b.md")


def test_gc_needs_an_index(cli: Cli) -> None:
    result = cli("gc", "--db", "nothing.db")
    assert result.exit_code == 2 and "no index at nothing.db" in result.stderr


def test_reset_empties_the_cache(cli: Cli, work: Path, index_db: str) -> None:
    write(work, {"docs/a.md": doc_of(PARAGRAPHS[:3])})
    assert cli("index", "docs", "--db", index_db).exit_code == 0
    again = cli("index", "docs", "--db", index_db, "--reset", "--json")
    assert again.summary()["reused"] == 0 and again.summary()["embedded"] > 0


def test_a_version_1_index_is_migrated(cli: Cli, work: Path) -> None:
    """An index written before the cache keeps its vectors: nothing is embedded again."""
    write(work, {"docs/a.md": doc_of(PARAGRAPHS[:6])})
    assert cli("index", "docs", "--db", "new.db", "--chunk-tokens", "32").exit_code == 0
    old = sqlite3.connect("old.db", isolation_level=None)
    old.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")  # type: ignore[operator]
    new = sqlite3.connect("new.db")
    for table in ("manifest", "files", "chunks"):
        columns = [r[1] for r in old.execute(f"PRAGMA table_info({table})")]
        rows = new.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
        marks = ", ".join("?" * len(columns))
        old.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
    old.executemany("INSERT INTO vectors VALUES (?, ?)", new.execute("SELECT * FROM vectors"))
    new.close()
    old.close()

    rerun = cli("index", "docs", "--db", "old.db", "--chunk-tokens", "32", "--json")
    assert rerun.exit_code == 0, rerun.stderr
    assert rerun.summary()["unchanged"] == 1
    store = SqliteStore.open(Path("old.db"), create=False)
    version = store.conn.execute("PRAGMA user_version").fetchone()[0]
    store.close()
    assert version == len(MIGRATIONS)
    write(work, {"docs/a.md": doc_of(PARAGRAPHS[:7])})
    edited = cli("index", "docs", "--db", "old.db", "--chunk-tokens", "32", "--json")
    assert edited.summary()["embedded"] <= 2 < edited.summary()["reused"]
    assert db_rows(Path("old.db"), "SELECT count(*) FROM chunks WHERE embedding_id IS NULL") == [
        (0,)
    ]


def test_identical_chunks_share_one_vector(cli: Cli, work: Path, index_db: str) -> None:
    with serve(Faults(dims=DIMS)) as server:
        write(work, {f"docs/{i}.md": "# Same\n\nThe very same words.\n" for i in range(30)})
        result = index_with(cli, server, db=index_db)
        assert result.exit_code == 0 and server.counters.inputs == 1
    rows = stored_vectors_in(index_db)
    assert len(rows) == 30 and index_rows(index_db, "SELECT count(*) FROM embeddings") == [(1,)]
    assert len({text for _, text, _ in rows}) == 1
    for _, text, vector in rows:
        assert np.allclose(vector, expected_vector(text, DIMS), atol=1e-6)


def test_dry_run_reports_and_writes_nothing(cli: Cli, work: Path) -> None:
    write(work, {f"docs/{i}.md": doc_of(PARAGRAPHS[i : i + 10]) for i in range(6)})
    result = cli(
        "index", "docs", "--db", "idx.db", "--dry-run", "--json", "--chunk-tokens", "32",
        "--batch-size", "8", "--rpm", "6", "--tpm", "600", "--price-per-mtok", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert not Path("idx.db").exists()
    summary = result.summary()
    est = summary["estimate"]
    assert summary["dry_run"] and summary["indexed"] == 6 and summary["embedded"] == 0
    distinct = summary["chunks"] - summary["reused"]
    assert est["requests"] == -(-distinct // 8)  # batches of 8
    assert est["seconds"] == round(max(est["requests"] / 6, est["tokens"] / 600) * 60, 1)
    assert est["cost"] == round(est["tokens"] / 1e6 * 2, 6)

    # After a real run, a dry run knows the cache and finds nothing to send.
    assert cli("index", "docs", "--db", "idx.db", "--chunk-tokens", "32").exit_code == 0
    write(work, {"docs/new.md": doc_of(PARAGRAPHS[:10])})
    again = cli("index", "docs", "--db", "idx.db", "--dry-run", "--json", "--chunk-tokens", "32")
    s = again.summary()
    assert s["unchanged"] == 6 and s["indexed"] == 1 and s["estimate"]["requests"] == 0
    assert db_rows(Path("idx.db"), "SELECT count(*) FROM files WHERE path LIKE '%new.md'") == [(0,)]
    text = cli("index", "docs", "--db", "idx.db", "--dry-run", "--rpm", "60")
    assert "dry run: nothing embedded or written" in text.stderr
    assert "no --price-per-mtok given" in text.stderr

    # With --reset, as if the index were empty; another vector space is refused, as it
    # would be for real; and nothing is written.
    before = Path("idx.db").read_bytes()
    reset = cli("index", "docs", "--db", "idx.db", "--dry-run", "--json", "--reset")
    assert reset.summary()["indexed"] == 7 and reset.summary()["estimate"]["tokens"] > 0
    other = cli("index", "docs", "--db", "idx.db", "--dry-run", "--provider", "hash")
    assert other.exit_code == 0
    wrong = cli(
        "index", "docs", "--db", "idx.db", "--dry-run", "--provider", "openai",
        "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--dimensions", "8",
    )  # fmt: skip
    assert wrong.exit_code == 2 and "was built with provider 'hash'" in wrong.stderr
    assert Path("idx.db").read_bytes() == before


def test_dry_run_does_not_upgrade_an_old_index(cli: Cli, work: Path) -> None:
    old = sqlite3.connect("old.db", isolation_level=None)
    old.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")  # type: ignore[operator]
    old.close()
    before = Path("old.db").read_bytes()
    write(work, {"docs/a.md": "# A\n\ntext\n"})
    result = cli("index", "docs", "--db", "old.db", "--dry-run")
    assert result.exit_code == 2
    assert "error: the index old.db has schema version 1" in result.stderr
    assert "hint: index once without --dry-run to upgrade it" in result.stderr
    assert Path("old.db").read_bytes() == before


def test_a_refitted_chunk_in_many_files_is_stored_and_never_resent(
    cli: Cli, work: Path, index_db: str
) -> None:
    """The model refuses the long line as too long: it is split, its pieces are cached, and
    later copies of it (in this run and the next) use the pieces' vectors."""
    line = " ".join(f"word{i}" for i in range(120))
    files = {f"docs/m{i:03d}.txt": f"filler file number {i}\n" for i in range(60)}
    files |= {"docs/a.txt": line + "\n", "docs/z.txt": line + "\n"}
    write(work, files)
    with serve(Faults(dims=DIMS, max_chars=300)) as server:
        first = index_with(cli, server, "--batch-size", "4", db=index_db)
        assert first.exit_code == 0, first.stderr
        assert first.files()["docs/z.txt"]["status"] == "indexed"
        sent = server.counters.inputs
        write(work, {"docs/copy.txt": line + "\n"})
        second = index_with(cli, server, "--batch-size", "4", db=index_db)
        assert second.exit_code == 0, second.stderr
        assert second.files()["docs/copy.txt"]["reason"].endswith("split to fit")
        assert server.counters.inputs == sent  # the pieces came from the cache
        assert second.summary()["embedded"] == 0 < second.summary()["reused"]
    _assert_exact(index_db, 63)


def test_chunks_that_wait_for_a_refused_input_are_not_reused(
    cli: Cli, work: Path, index_db: str
) -> None:
    write(work, {f"docs/{i}.md": "# Same\n\nPOISON words.\n" for i in range(3)})
    with serve(Faults(dims=DIMS, poison="POISON")) as server:
        result = index_with(cli, server, db=index_db)
    summary = result.summary()
    assert summary["failed"] == 3 and summary["embedded"] == 0 and summary["reused"] == 0


def test_a_lookup_that_misses_a_commit_still_finds_the_vector() -> None:
    """A cache lookup runs in a thread; a vector committed between the lookup and the claim
    is neither in the lookup's answer nor in flight, and must not be sent again."""
    from ragidx.models import Document
    from ragidx.pipeline.cache import Inflight
    from ragidx.pipeline.pending import Part, PendingFile

    inflight = Inflight()
    doc = Document(Path("a"), "", "text", "utf-8", "h", 0, 0)
    part = Part(PendingFile("a", doc), 0, [], [b"k1", b"k2"])
    since = inflight.lookup_begins()  # the lookup misses k1: not committed yet
    assert inflight.claim(b"k1", part, 0, since) == "send"
    assert inflight.settle(b"k1", received=True) == [(part, 0)]
    inflight.committed([b"k1"])  # committed, and no longer in `received`
    other = Part(PendingFile("b", doc), 0, [], [b"k1"])
    assert inflight.claim(b"k1", other, 0, since) == "have"
    inflight.lookup_ends(since)
    later = inflight.lookup_begins()  # a lookup from now on sees k1 in the cache
    assert inflight.claim(b"k1", other, 0, later) == "send"


def test_a_rerun_reads_file_stamps_from_an_index_alone(work: Path) -> None:
    # A no-op re-run reads a stamp for every file of the tree; from a covering index that is
    # 0.14 s for 100,000 files here, against 0.23 s through the table.
    store = SqliteStore.open(work / "idx.db")
    store.stamps_in_dir(str(work))
    query = f"SELECT {STAMP_COLUMNS} FROM files WHERE dir = ?"
    plan = store.conn.execute(f"EXPLAIN QUERY PLAN {query}", (str(work),)).fetchall()
    store.close()
    assert "USING COVERING INDEX files_dir_stamp" in str(plan)
