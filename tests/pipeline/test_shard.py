"""`--shard K/N`: N runs split a tree between them by a hash of each path, and each indexes,
reports and removes only its own part's files."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from helpers import Cli, make_tree

import ragidx
from ragidx.config import IndexConfig, Shard
from ragidx.embed import HashEmbedder
from ragidx.errors import ConfigError
from ragidx.models import FileStatus
from ragidx.store import SqliteStore


def _indexed(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT path FROM files WHERE status = 'indexed'").fetchall()
    finally:
        conn.close()
    return {path for (path,) in rows}


def test_shards_split_a_tree_and_each_removes_only_its_own(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree, 40)
    files = sorted(str(p) for p in tree.rglob("*.md"))
    db = tmp_path / "idx.db"

    def run(shard: Shard | None) -> dict[FileStatus, int]:
        config = IndexConfig(db_path=db, workers=0, shard=shard)
        return ragidx.index([tree], HashEmbedder(), config).counts

    first, second = Shard(1, 2), Shard(2, 2)
    mine = {f for f in files if first.holds(f)}
    assert 0 < len(mine) < 40 and all(second.holds(f) for f in set(files) - mine)
    assert run(first)[FileStatus.INDEXED] == len(mine)
    assert _indexed(db) == mine
    counts = run(second)
    assert (counts[FileStatus.INDEXED], counts[FileStatus.REMOVED]) == (40 - len(mine), 0)
    assert _indexed(db) == set(files)
    # A file of each part goes: each part's run removes its own only.
    gone_first = next(f for f in files if f in mine)
    gone_second = next(f for f in files if f not in mine)
    Path(gone_first).unlink()
    Path(gone_second).unlink()
    counts = run(second)
    assert counts[FileStatus.REMOVED] == 1
    assert counts[FileStatus.UNCHANGED] == 40 - len(mine) - 1
    assert _indexed(db) == set(files) - {gone_second}
    counts = run(first)
    assert counts[FileStatus.REMOVED] == 1
    assert _indexed(db) == set(files) - {gone_first, gone_second}
    # The whole tree, unsharded, finds nothing left to do.
    counts = run(None)
    assert counts[FileStatus.UNCHANGED] == 38 and counts[FileStatus.INDEXED] == 0


def test_every_path_is_in_exactly_one_part() -> None:
    paths = [f"/data/docs/{i}/file-{i * 7}.md" for i in range(2000)]
    parts = [Shard(k, 5) for k in range(1, 6)]
    owners = [sum(part.holds(p) for part in parts) for p in paths]
    assert owners == [1] * len(paths)
    sizes = [sum(part.holds(p) for p in paths) for part in parts]
    assert min(sizes) > 300  # a hash, not an order: every part gets its share


@pytest.mark.parametrize("text", ["3/2", "0/4", "x", "1/", "1/0", "2-4"])
def test_a_bad_shard_is_refused_naming_the_option(cli: Cli, work: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        Shard.parse(text)
    (work / "docs").mkdir()
    result = cli("index", "docs", "--db", "idx.db", "--shard", text)
    assert result.exit_code == 2
    assert "error: --shard" in result.stderr and "Traceback" not in result.stderr


def test_the_cli_indexes_only_its_part(cli: Cli, work: Path) -> None:
    make_tree(work / "docs", 12)
    one = cli("index", "docs", "--db", "idx.db", "--json", "--shard", "1/3").files()
    two = cli("index", "docs", "--db", "idx.db", "--json", "--shard", "2/3").files()
    three = cli("index", "docs", "--db", "idx.db", "--json", "--shard", "3/3").files()
    assert not set(one) & set(two) and not set(two) & set(three) and not set(one) & set(three)
    assert len(one) + len(two) + len(three) == 12
    assert all(r["status"] == "indexed" for r in [*one.values(), *two.values(), *three.values()])


def test_stats_and_the_progress_view_show_each_shards_run(tmp_path: Path, cli: Cli) -> None:
    tree = tmp_path / "tree"
    make_tree(tree, 30)
    (tree / "bad.md").write_bytes(b"\xff\xfe\x00binary\x00" * 10)
    db = tmp_path / "idx.db"
    first, second = Shard(1, 2), Shard(2, 2)
    done = {}
    for shard in (first, second):
        summary = ragidx.index(
            [tree], HashEmbedder(), IndexConfig(db_path=db, workers=0, shard=shard)
        )
        done[str(shard)] = sum(summary.counts.values())
    result = cli("stats", "--db", str(db), "--json")
    assert result.exit_code == 0, result.stderr
    workers = json.loads(result.stdout)["workers"]
    assert [w["shard"] for w in workers] == ["2/2", "1/2"]  # newest first
    assert all(w["status"] == "completed" and w["in_flight"] == 0 for w in workers)
    assert {w["shard"]: w["files_done"] + w["files_failed"] for w in workers} == done
    assert sum(w["files_done"] + w["files_failed"] for w in workers) == 31
    assert all(w["worker"].endswith(f":{os.getpid()}") for w in workers)
    shown = cli("stats", "--db", str(db))
    assert "workers" in shown.stdout and "2/2" in shown.stdout and "1/2" in shown.stdout
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT shard, status, files_done + files_failed FROM ragidx_progress ORDER BY run_id"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [("1/2", "completed", done["1/2"]), ("2/2", "completed", done["2/2"])]


def test_a_run_that_died_shows_as_died_until_the_next_run(tmp_path: Path) -> None:
    db = tmp_path / "idx.db"
    store = SqliteStore.open(db)
    try:
        dead = store.begin_run(["/x"], worker="elsewhere:1")
        (worker,) = store.stats().workers
        assert (worker.run_id, worker.status) == (dead, "died")  # no one holds the lock
    finally:
        store.close()
    tree = tmp_path / "tree"
    make_tree(tree, 3)
    ragidx.index([tree], HashEmbedder(), IndexConfig(db_path=db, workers=0))
    store = SqliteStore.open(db)
    try:
        statuses = [(w.run_id, w.status) for w in store.stats().workers]
    finally:
        store.close()
    assert statuses[1] == (dead, "died") and statuses[0][1] == "completed"
