"""`stats` and `gc` agree: what `stats` counts as unused is what `gc` drops; vectors a file
not yet indexed still needs (a big file's staged parts, a failed file's chunks) are kept and
counted apart; failures the index cannot hold are counted; `gc --no-vacuum` reports sizes
that are true. Each runs on SQLite and Postgres (`index_db`), but the file sizes and the
big file's crash (see there)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import DIMS, PARAGRAPHS, Cli, doc_of, index_with, write
from pg import index_rows

from ragidx.read.text import LARGE_FILE
from ragidx.testing.server import Faults, serve


def _stats(cli: Cli, db: str = "idx.db") -> dict[str, Any]:
    result = cli("stats", "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _gc(cli: Cli, *args: str, db: str = "idx.db") -> dict[str, Any]:
    result = cli("gc", "--db", db, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _markdown(size: int) -> str:
    paragraphs, total, i = [], 0, 0
    while total < size:
        text = f"Paragraph {i} of the big file talks about item{i} and thing{i * 7}.\n\n"
        paragraphs.append(text)
        total += len(text)
        i += 1
    return "# Big\n\n" + "".join(paragraphs)


# SQLite only: on Postgres the big file's 8 MB re-index (HNSW updated on every insert) takes
# minutes on a busy 2-core machine; staging after a crash is covered there by test_contract.
@pytest.mark.slow
def test_after_a_crash_in_a_big_file_gc_keeps_its_staged_vectors(cli: Cli, work: Path) -> None:
    write(work, {"docs/big.md": _markdown(LARGE_FILE * 2), "docs/small.md": "Paragraph zero\n"})
    write(work, {"extra/gone.md": doc_of(PARAGRAPHS[:12])})
    args = ["--db", "idx.db", "-q", "--chunk-tokens", "64", "--max-file-size", "20MB"]
    assert cli("index", "docs/small.md", "extra", *args).exit_code == 0
    (work / "extra/gone.md").unlink()
    assert cli("index", "extra", *args).exit_code == 0  # its vectors are unused now
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragidx", "index", "docs", *args],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline, staged = time.monotonic() + 60, 0
    staging = "SELECT count(*) FROM chunks c JOIN files f ON f.id = c.file_id"
    while time.monotonic() < deadline and proc.poll() is None and staged < 200:
        time.sleep(0.05)
        staged = index_rows("idx.db", f"{staging} WHERE f.status = 'staging'")[0][0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert staged >= 200, "the big file was never seen staged"

    stats = _stats(cli)
    unused, held = stats["unused_vectors"], stats["held_vectors"]
    assert unused > 0 and held >= 200
    gc = _gc(cli)
    assert (gc["vectors"], gc["held"]) == (unused, held)  # what stats said, no more
    after = _stats(cli)
    assert (after["unused_vectors"], after["held_vectors"]) == (0, held)
    assert after["cached_vectors"] == stats["cached_vectors"] - unused

    again = cli("index", "docs", *args[:-1], "20MB", "--json")
    assert again.exit_code == 0, again.stderr
    summary = again.summary()
    assert again.files()["docs/big.md"]["status"] == "indexed"
    assert summary["reused"] >= held  # the staged parts were not paid for twice
    assert _stats(cli)["held_vectors"] == 0


def test_gc_keeps_the_vectors_of_a_failed_file_until_it_is_retried(
    cli: Cli, work: Path, index_db: str
) -> None:
    write(work, {"docs/a.md": doc_of([*PARAGRAPHS[:10], "POISON here", *PARAGRAPHS[10:20]])})
    with serve(Faults(dims=DIMS, poison="POISON")) as server:
        first = index_with(cli, server, "--chunk-tokens", "32", db=index_db)
        assert first.exit_code == 1 and first.files()["docs/a.md"]["status"] == "failed"
        stats = _stats(cli, index_db)
        assert stats["unused_vectors"] == 0 and stats["held_vectors"] >= 5
        assert stats["chunks"] == 0  # held chunks are neither counted nor searched
        gc = _gc(cli, db=index_db)
        assert (gc["vectors"], gc["held"]) == (0, stats["held_vectors"])
        # A run over other paths leaves them held: the file is neither indexed nor gone.
        write(work, {"other/b.md": "# B\n\nbeta\n"})
        other = cli(
            "index", "other", "--db", index_db, "--provider", "openai", "--base-url",
            f"{server.url}/v1", "--model", "test-model", "--dimensions", str(DIMS),
        )  # fmt: skip
        assert other.exit_code == 0, other.stderr
        assert _stats(cli, index_db)["held_vectors"] == stats["held_vectors"]
        server.faults.poison = None
        before = server.counters.inputs
        second = index_with(cli, server, "--chunk-tokens", "32", db=index_db)
        assert second.exit_code == 0, second.stderr
        # Only the refused chunk (and its overlap) goes out again: gc dropped nothing paid for.
        assert 1 <= server.counters.inputs - before == second.summary()["embedded"] <= 2
    after = _stats(cli, index_db)
    assert after["held_vectors"] == 0 and after["unused_vectors"] == 0
    hits = cli("search", "POISON", "--db", index_db, "--json", "--mode", "text").json_lines()
    assert {h["path"] for h in hits} == {"docs/a.md"}
    assert index_rows(index_db, "SELECT count(*) FROM files WHERE status = 'staging'") == [
        (0,)
    ]  # the held chunks went at the retry's start


def test_vectors_held_for_a_file_that_is_gone_are_dropped(
    cli: Cli, work: Path, index_db: str
) -> None:
    write(work, {"docs/a.md": doc_of([*PARAGRAPHS[:10], "POISON here"])})
    with serve(Faults(dims=DIMS, poison="POISON")) as server:
        assert index_with(cli, server, "--chunk-tokens", "32", db=index_db).exit_code == 1
    held = _stats(cli, index_db)["held_vectors"]
    assert held >= 5
    (work / "docs/a.md").unlink()
    gc = _gc(cli, db=index_db)
    assert (gc["vectors"], gc["held"]) == (held, 0)
    assert index_rows(index_db, "SELECT count(*) FROM chunks") == [(0,)]


def test_stats_counts_the_failures_the_index_cannot_hold(
    cli: Cli, work: Path, poison_provider: None, index_db: str
) -> None:
    write(work, {"docs/ok.md": "fine\n", "docs/p.md": "POISON\n"})
    (work / os.fsdecode(b"docs/bad\xff name.md")).write_text("odd name\n", encoding="utf-8")
    result = cli("index", "docs", "--db", index_db, "--json", "--provider", "poison")
    assert result.exit_code == 1
    assert result.summary()["failed"] == 2
    stats = _stats(cli, index_db)
    assert stats["files"]["failed"] == 1 and stats["failed_not_stored"] == 1
    text = " ".join(cli("stats", "--db", index_db).stdout.split())
    assert "files failed 1 (+1 in the last run that the index cannot hold: see its output)" in (
        text
    )


def test_gc_without_vacuum_reports_the_file_as_it_is(cli: Cli, work: Path) -> None:
    write(work, {f"docs/{n}.md": doc_of([f"{p} ({n})" for p in PARAGRAPHS]) for n in "abcdef"})
    assert cli("index", "docs", "--db", "idx.db", "-q", "--chunk-tokens", "32").exit_code == 0
    for name in "abcde":
        (work / f"docs/{name}.md").unlink()
    assert cli("index", "docs", "--db", "idx.db", "-q", "--chunk-tokens", "32").exit_code == 0
    stats = _stats(cli)
    unused, vector_bytes = stats["unused_vectors"], stats["dims"] * 4
    assert unused > 100
    gc = _gc(cli, "--no-vacuum")
    assert gc["vectors"] == unused
    assert gc["bytes_after"] == gc["bytes_before"] == os.path.getsize(work / "idx.db")
    assert gc["free_bytes"] > unused * vector_bytes // 2  # their pages, free in the file
    text = cli("gc", "--db", "idx.db", "--no-vacuum")
    assert "dropped 0 unused vectors; the index is" in text.stderr and "free pages" in text.stderr
    vacuumed = _gc(cli)
    assert vacuumed["bytes_after"] < vacuumed["bytes_before"] and vacuumed["free_bytes"] == 0
    assert vacuumed["bytes_after"] == os.path.getsize(work / "idx.db")
