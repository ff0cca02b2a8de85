"""A damaged index: every command says so (exit 2, the file named, a hint), never with a
traceback; damaged vectors are reported and not ranked; `doctor --db` says which files are
affected, and `--salvage` keeps the intact cached vectors for the next run."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import RAGIDX, Cli, db_rows

PAGE = 4096
QUERY = "thundering herd jitter"
TOP = "sample_docs/docs/guides/retries.md"


@pytest.fixture
def indexed(cli: Cli, sample: Path) -> Path:
    assert cli("index", "sample_docs", "--db", "idx.db", "--quiet").exit_code == 0
    return Path("idx.db")


def _ragidx_all(commands: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """The commands side by side, each a process of its own, as a person would see them."""
    procs = [
        subprocess.Popen(
            [*RAGIDX, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for args in commands
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _readers(db: str) -> list[list[str]]:
    return [
        ["stats", "--db", db],
        ["search", QUERY, "--db", db],
        ["search", QUERY, "--db", db, "--mode", "vector"],
        ["search", QUERY, "--db", db, "--mode", "text"],
        ["export", "--db", db, "--vectors"],
    ]


@pytest.mark.slow
def test_every_command_survives_a_page_overwritten(indexed: Path, work: Path) -> None:
    good = indexed.read_bytes()
    pages = len(good) // PAGE
    # Page 1 (the header), one of the first pages (the tables' roots), then pages drawn at
    # random: leaves, and the overflow pages that hold the end of each vector, where SQLite
    # sees nothing wrong.
    draw = random.Random(14)
    chosen = [1, draw.randrange(2, 20), *sorted(draw.sample(range(20, pages + 1), 4))]
    detected = 0
    for page in chosen:
        damaged = bytearray(good)
        damaged[(page - 1) * PAGE : page * PAGE] = random.Random(page).randbytes(PAGE)
        db = work / "damaged.db"
        db.write_bytes(damaged)
        # The readers and doctor at once; the index re-run, which may write, after them.
        *reads, doctor = _ragidx_all([*_readers(db.name), ["doctor", "--db", db.name]], work)
        (index,) = _ragidx_all([["index", "sample_docs", "--db", db.name, "--quiet"]], work)
        flagged = False
        for run in [*reads, index, doctor]:
            said = f"page {page}: {' '.join(run.args[2:])}: exit {run.returncode}\n{run.stderr}"
            assert "Traceback" not in run.stderr, said
            assert "Warning" not in run.stderr, said  # numpy's, from ranking garbage
            if run is doctor:
                # Doctor's own convention: 1 when a check fails.
                assert run.returncode == 1 if flagged else run.returncode in (0, 1), said
                if run.returncode == 1:
                    assert f"fail index: {db.name}" in run.stdout, said
                    assert "--salvage" in run.stdout, said
                    detected += 1
                continue
            assert run.returncode in (0, 2), said
            if run.returncode == 2:
                assert f"error: the index {db.name} is damaged (" in run.stderr, said
                assert "\nhint: " in run.stderr, said
                assert "`ragidx doctor --db damaged.db --salvage`" in run.stderr, said
            flagged |= run.returncode == 2 or "damaged; not ranked" in run.stderr
    assert detected >= 2  # page 1 at least, and one more


def _damage_vectors(db: Path, path_suffix: str) -> int:
    """Overwrite the stored vectors of one file: NaN, the wrong length, random bits."""
    conn = sqlite3.connect(db)
    with conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT c.embedding_id FROM chunks c JOIN files f ON f.id = c.file_id"
                " WHERE f.path LIKE ?",
                (f"%{path_suffix}",),
            )
        ]
        (dims,) = conn.execute("SELECT value FROM manifest WHERE key = 'dims'").fetchone()
        nan = np.full(int(dims), np.nan, dtype="<f4").tobytes()
        garbage = random.Random(5).randbytes(int(dims) * 4)
        blobs = [nan, b"\0" * 12, garbage]
        for i, embedding_id in enumerate(ids):
            conn.execute(
                "UPDATE embeddings SET vector = ? WHERE id = ?", (blobs[i % 3], embedding_id)
            )
    conn.close()
    return len(ids)


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_damaged_vectors_are_reported_not_ranked(cli: Cli, indexed: Path, mode: str) -> None:
    before = cli("search", QUERY, "--db", "idx.db", "--json", "--mode", "vector", "-k", "3")
    assert before.json_lines()[0]["path"] == TOP
    damaged = _damage_vectors(indexed, TOP)
    assert damaged >= 3  # each kind of damage at least once

    result = cli("search", QUERY, "--db", "idx.db", "--json", "--mode", mode, "-k", "50")
    assert result.exit_code == 0, result.stderr
    assert f"warning: {damaged} vectors of {TOP} are damaged; not ranked" in result.stderr
    hits = result.json_lines()
    assert hits and all(h["vector_rank"] is None for h in hits if h["path"] == TOP)
    if mode == "hybrid":  # BM25 still finds the file by its words
        assert any(h["path"] == TOP and h["text_rank"] for h in hits)


def test_export_refuses_damaged_vectors(cli: Cli, indexed: Path) -> None:
    _damage_vectors(indexed, TOP)
    result = cli("export", "--db", "idx.db", "--vectors")
    assert result.exit_code == 2
    damaged_file = (Path.cwd() / TOP).resolve()
    assert f"error: the index idx.db is damaged (a vector of {damaged_file}" in result.stderr
    assert "hint: `ragidx doctor --db idx.db`" in result.stderr
    for line in result.stdout.splitlines():
        json.loads(line)  # what went out before is valid JSON: no NaN
    assert cli("export", "--db", "idx.db").exit_code == 0  # the text is intact


def test_doctor_on_a_sound_index(cli: Cli, indexed: Path) -> None:
    result = cli("doctor", "--db", "idx.db")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("ok   index: idx.db: integrity check ok; 29 files,")


def test_doctor_names_the_files_affected(cli: Cli, indexed: Path) -> None:
    damaged = _damage_vectors(indexed, TOP)
    result = cli("doctor", "--db", "idx.db")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "fail index: idx.db is damaged"
    assert "ragidx doctor --db idx.db --salvage" in lines[1]
    assert f"fail file: {TOP}: {damaged} of " in result.stdout
    assert "vectors damaged or missing" in result.stdout
    assert f"fail cache: {damaged} of " in result.stdout
    records = cli("doctor", "--db", "idx.db", "--json").json_lines()
    assert [r["name"] for r in records][:1] == ["index"] and not records[0]["ok"]


def test_doctor_without_the_index(cli: Cli, work: Path) -> None:
    result = cli("doctor", "--db", "missing.db")
    assert result.exit_code == 2
    assert "error: no index at missing.db" in result.stderr
    assert not (work / "missing.db").exists()


def test_salvage_keeps_the_intact_cache(cli: Cli, indexed: Path, work: Path) -> None:
    (chunks,) = db_rows(indexed, "SELECT count(*) FROM chunks")[0]
    damaged = _damage_vectors(indexed, TOP)

    result = cli("doctor", "--db", "idx.db", "--salvage")
    assert result.exit_code == 0, result.stdout
    assert f"dropped {damaged} damaged" in result.stdout
    assert "the damaged index is kept as idx.db.damaged" in result.stdout
    assert "now run `ragidx index sample_docs --db idx.db`" in result.stdout
    assert (work / "idx.db.damaged").exists()
    assert db_rows(indexed, "SELECT count(*) FROM files") == [(0,)]

    again = cli("index", "sample_docs", "--db", "idx.db", "--json")
    assert again.exit_code == 0, again.stderr
    summary = again.summary()
    assert summary["embedded"] == damaged  # only what was lost goes to the embedder
    assert summary["chunks"] == chunks and summary["reused"] == chunks - damaged
    assert cli("doctor", "--db", "idx.db").exit_code == 0
    hits = cli("search", QUERY, "--db", "idx.db", "--json", "--mode", "vector").json_lines()
    assert hits[0]["path"] == TOP


def test_salvage_of_an_unreadable_header(cli: Cli, indexed: Path, work: Path) -> None:
    data = bytearray(indexed.read_bytes())
    data[:PAGE] = random.Random(1).randbytes(PAGE)
    indexed.write_bytes(data)
    stats = cli("stats", "--db", "idx.db")
    assert stats.exit_code == 2
    assert "error: the index idx.db is damaged (file is not a database)" in stats.stderr

    result = cli("doctor", "--db", "idx.db")
    assert result.exit_code == 1
    assert "fail index: idx.db cannot be read:" in result.stdout
    salvaged = cli("doctor", "--db", "idx.db", "--salvage")
    assert salvaged.exit_code == 0
    assert "keeps 0 cached vectors" in salvaged.stdout
    assert cli("index", "sample_docs", "--db", "idx.db", "--quiet").exit_code == 0
    assert cli("doctor", "--db", "idx.db").exit_code == 0
    assert (work / "idx.db.damaged").read_bytes() == bytes(data)


def test_index_stops_where_the_cache_is_damaged(cli: Cli, indexed: Path, work: Path) -> None:
    # The leaves of the cache's key index: every lookup of a changed file's chunks reads them.
    for page in _pages_of(indexed, "sqlite_autoindex_embeddings_1"):
        _overwrite(indexed, page)
    for doc in (work / "sample_docs" / "docs").glob("*.md"):
        doc.write_text(doc.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    result = cli("index", "sample_docs", "--db", "idx.db", "--json")
    assert result.exit_code == 2  # not 1, with each file failed for the index's fault
    assert "error: the index idx.db is damaged (database disk image is malformed)" in (
        result.stderr
    )
    assert not [f for f in result.files().values() if f["status"] == "failed"]


def _pages_of(db: Path, tree: str) -> list[int]:
    try:
        rows = db_rows(db, "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", [tree])
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table")
    return [page for (page,) in rows]


def _overwrite(db: Path, page: int) -> None:
    with db.open("r+b") as f:
        f.seek((page - 1) * PAGE)
        f.write(random.Random(page).randbytes(PAGE))


def test_doctor_and_salvage_after_a_page_of_chunks(cli: Cli, indexed: Path) -> None:
    _overwrite(indexed, _pages_of(indexed, "chunks")[0])
    result = cli("doctor", "--db", "idx.db")
    assert result.exit_code == 1
    assert "fail integrity: SQLite finds damage in chunks:" in result.stdout
    affected = [line for line in result.stdout.splitlines() if line.startswith("fail file: ")]
    assert affected and all(line.endswith(": its chunks fail to read") for line in affected)

    assert cli("doctor", "--db", "idx.db", "--salvage").exit_code == 0
    again = cli("index", "sample_docs", "--db", "idx.db", "--json")
    assert again.exit_code == 0 and again.summary()["embedded"] == 0  # the cache was intact
    assert cli("doctor", "--db", "idx.db").exit_code == 0
