"""ragidx as a separate process: real pipes, signals, and readers beside a running index."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import RAGIDX, finish, make_tree, read_lines, start


def _consistent(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    partial = conn.execute(
        "SELECT f.path FROM files f LEFT JOIN chunks c ON c.file_id = f.id"
        " WHERE f.status = 'indexed' GROUP BY f.id HAVING count(c.id) != f.chunks"
    ).fetchall()
    assert partial == []
    orphans = conn.execute(
        "SELECT count(*) FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id"
        " WHERE v.chunk_id IS NULL"
    ).fetchone()
    assert orphans == (0,)
    return conn


def test_find_print0_pipeline(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 30)
    found = subprocess.run(
        ["find", "tree", "-name", "*.md", "-print0"], cwd=tmp_path, capture_output=True, check=True
    ).stdout
    done = subprocess.run(
        [*RAGIDX, "index", "--null", "-", "--db", "idx.db", "--json"],
        cwd=tmp_path,
        input=found,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[-1] == {**records[-1], "event": "summary", "indexed": 30, "failed": 0}
    assert len(records) == 31


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("big")
    make_tree(root / "tree", 6000, words=200)
    return root


@pytest.mark.slow
def test_sigint_keeps_committed_files_and_exits_130(big_tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "idx.db"
    proc = start([*RAGIDX, "index", "tree", "--db", str(db), "--json"], big_tree)
    lines = read_lines(proc, 200)
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    records = [json.loads(line) for line in lines + out.splitlines()]
    summary = records[-1]
    assert summary["event"] == "summary" and summary["interrupted"] is True
    conn = _consistent(db)
    (committed,) = conn.execute("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone()
    assert 200 <= committed < 6000
    # Every committed file was reported, and nothing was reported that is not committed.
    assert summary["indexed"] == committed == len(records) - 1
    assert conn.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    conn.close()

    rerun = subprocess.run(
        [*RAGIDX, "index", "tree", "--db", str(db), "--json", "--quiet"],
        cwd=big_tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.splitlines()[-1])
    assert summary["unchanged"] == committed
    assert summary["indexed"] == 6000 - committed
    _consistent(db).close()


@pytest.mark.slow
def test_stats_search_export_work_while_index_writes(big_tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "idx.db"
    proc = start([*RAGIDX, "index", "tree", "--db", str(db), "--json"], big_tree)
    try:
        read_lines(proc, 100)
        seen = []
        for _ in range(3):
            stats = subprocess.run(
                [*RAGIDX, "stats", "--db", str(db), "--json"],
                capture_output=True, text=True, check=False, timeout=30,
            )  # fmt: skip
            assert stats.returncode == 0, stats.stderr
            seen.append(json.loads(stats.stdout)["files"]["indexed"])
            time.sleep(0.2)
        search = subprocess.run(
            [*RAGIDX, "search", "word5 word36", "--db", str(db), "--json"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        assert search.returncode == 0, search.stderr
        assert len(search.stdout.splitlines()) == 5
        assert proc.poll() is None, "the index run ended before the readers were done"
        assert 0 < seen[0] <= seen[-1] < 6000
    finally:
        out, err = finish(proc)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["indexed"] == 6000


def test_json_into_a_closed_pipe_still_indexes_everything(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 300)
    shell = f"{sys.executable} -m ragidx index tree --db idx.db --json | head -1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"] == "file"
    conn = _consistent(tmp_path / "idx.db")
    assert conn.execute("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone() == (300,)
    conn.close()


def _as_nobody() -> list[str]:
    """A prefix that runs a command without root's power to read anything."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is not installed")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_unreadable_directory_keeps_what_is_indexed_under_it() -> None:
    root = Path(tempfile.mkdtemp(prefix="ragidx-perm-"))
    try:
        root.chmod(0o777)
        make_tree(root / "tree", 12)
        for path in [root / "tree", *(root / "tree").rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        index = [*_as_nobody(), *RAGIDX, "index", "tree", "--db", "idx.db", "--json", "-q"]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        first = subprocess.run(index, cwd=root, capture_output=True, text=True, env=env)
        assert first.returncode == 0, first.stderr
        locked = root / "tree" / "d03"
        locked.chmod(0o000)
        second = subprocess.run(index, cwd=root, capture_output=True, text=True, env=env)
        locked.chmod(0o777)
        assert second.returncode == 1
        records = [json.loads(line) for line in second.stdout.splitlines()]
        statuses = {r["path"]: r["status"] for r in records if r["event"] == "file"}
        assert statuses.pop("tree/d03") == "failed"
        assert set(statuses.values()) == {"unchanged"}
        conn = _consistent(root / "idx.db")
        under = conn.execute("SELECT count(*) FROM files WHERE path LIKE '%/tree/d03/%'")
        assert under.fetchone() == (1,)  # make_tree puts file 3 of 12 there
        assert conn.execute("SELECT count(*) FROM files").fetchone() == (12,)
        conn.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_unreadable_file_fails_alone_and_read_only_index_is_a_usage_error() -> None:
    root = Path(tempfile.mkdtemp(prefix="ragidx-perm-"))
    try:
        root.chmod(0o777)
        (root / "docs").mkdir(mode=0o777)
        (root / "docs" / "open.md").write_text("readable\n")
        (root / "docs" / "shut.md").write_text("unreadable\n")
        (root / "docs" / "shut.md").chmod(0o000)
        (root / "docs").chmod(0o777)
        index = [*_as_nobody(), *RAGIDX, "index", "docs", "--db", "idx.db", "--json", "-q"]
        done = subprocess.run(index, cwd=root, capture_output=True, text=True)
        assert done.returncode == 1, done.stderr
        records = {r["path"]: r for r in map(json.loads, done.stdout.splitlines()) if "path" in r}
        assert records["docs/open.md"]["status"] == "indexed"
        assert records["docs/shut.md"]["status"] == "failed"
        assert records["docs/shut.md"]["reason"] == "read_error: Permission denied"

        (root / "idx.db").chmod(0o444)
        refused = subprocess.run(index, cwd=root, capture_output=True, text=True)
        assert refused.returncode == 2
        assert "error: cannot write to the index idx.db" in refused.stderr
        assert "readonly database" in refused.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)
