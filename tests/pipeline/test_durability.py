"""Nothing indexed is lost and nothing paid for is paid twice: kill -9 at random moments,
Ctrl-C once and twice, two writers at once, and a disk that fills up."""

from __future__ import annotations

import json
import resource
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from helpers import RAGIDX, finish, index_args, make_tree, read_lines, start

from ragidx.testing.server import Faults, serve
from ragidx.testing.soak import check_index, make_corpus, soak

DIMS = 32


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    corpus, db = tmp_path / "corpus", tmp_path / "idx.db"
    versions = make_corpus(corpus, 400)
    with serve(Faults(dims=DIMS, latency=0.2)) as server:
        result = soak(corpus, db, server, versions, kills=22, delay=(0.3, 1.5))
    assert result.problems == []
    assert result.kills >= 15, result  # a run with little left to do may finish first
    assert result.checks_passed == 23
    assert result.files == 400
    # What the server embedded and the index never got is bounded by what was in flight.
    assert 0 <= result.excess <= result.in_flight_bound, result
    print(
        f"kills {result.kills}, checks passed {result.checks_passed}, inputs sent "
        f"{result.inputs_sent}, distinct cached {result.distinct_cached}, re-sent "
        f"{result.excess} (bound {result.in_flight_bound})"
    )


def test_first_ctrl_c_drains_and_commits(tmp_path: Path) -> None:
    make_tree(tmp_path / "corpus", 300)
    db = tmp_path / "idx.db"
    with serve(Faults(dims=DIMS, latency=0.4)) as server:
        args = index_args(server.url, db, "--json", "--batch-size", "4", "--concurrency", "3")
        proc = start(args, tmp_path)
        # Stop once a few answers are in, not once some files' lines are out: lines come in
        # walk order, and on a busy machine the walk's first file may be embedded last.
        deadline = time.monotonic() + 30
        while server.counters.requests < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, err = finish(proc)
        stopped_in = time.monotonic() - started
        sent = server.counters.inputs
    assert proc.returncode == 130, err
    assert "stopping: no new work" in err
    assert stopped_in < 5  # the requests in flight take 0.4 s; nothing new was sent
    records = [json.loads(line) for line in out.splitlines()]
    summary = records[-1]
    assert summary["event"] == "summary" and summary["interrupted"] is True
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    committed = conn.execute("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone()[0]
    cached = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert conn.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    conn.close()
    assert summary["indexed"] == committed == len(records) - 1 < 300
    # Every answer that came back, even for files left unfinished, is in the cache.
    assert cached == sent == summary["embedded"]


def test_second_ctrl_c_quits_at_once(tmp_path: Path) -> None:
    make_tree(tmp_path / "corpus", 50)
    db = tmp_path / "idx.db"
    with serve(Faults(dims=DIMS, latency=0.05, hang_first=1000, hang_seconds=60)) as server:
        # Every request hangs: the first Ctrl-C would wait out the 30 s grace period. Small
        # batches, so that two requests are in flight (50 files are one batch otherwise).
        args = index_args(server.url, db, "--timeout", "30", "--batch-size", "4")
        proc = start(args, tmp_path)
        deadline = time.monotonic() + 30
        while server.counters.requests < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 3
    assert "stopping" in err and "quitting now" in err
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


@pytest.mark.slow
def test_a_second_index_waits_for_the_first(tmp_path: Path) -> None:
    make_tree(tmp_path / "corpus", 100)
    db = tmp_path / "idx.db"
    with serve(Faults(dims=DIMS, latency=0.2)) as server:
        slow = ("--json", "--batch-size", "4", "--concurrency", "1")
        first = start(index_args(server.url, db, *slow), tmp_path)
        read_lines(first, 1)
        refused = subprocess.run(
            index_args(server.url, db, "--no-wait"), cwd=tmp_path, capture_output=True,
            text=True, check=False,
        )  # fmt: skip
        assert refused.returncode == 2
        assert f"error: another ragidx is writing the index {db} (pid {first.pid})" in (
            refused.stderr
        )
        second = start(index_args(server.url, db, "--json"), tmp_path)
        out2, err2 = second.communicate(timeout=120)
        finish(first)
    assert first.returncode == 0 and second.returncode == 0, err2
    assert f"waiting: another ragidx (pid {first.pid}) is writing" in err2
    summary = json.loads(out2.splitlines()[-1])
    assert summary["unchanged"] == 100 and summary["embedded"] == 0  # it began after the first
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT count(*) FROM files").fetchone() == (100,)
    conn.close()


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_stops_the_run_and_the_index_stays_whole(tmp_path: Path) -> None:
    make_tree(tmp_path / "corpus", 400, words=200)
    db = tmp_path / "idx.db"
    args = [*RAGIDX, "index", "corpus", "--db", str(db), "--json"]
    full = subprocess.run(
        args, cwd=tmp_path, capture_output=True, text=True, check=False,
        preexec_fn=lambda: _limit_file_size(2 * 1024 * 1024),
    )  # fmt: skip
    assert full.returncode == 2, full.stderr
    assert f"error: cannot write to the index {db}" in full.stderr
    assert "hint: free some disk space" in full.stderr
    versions = {
        str(p.resolve()): {_hash(p)} for p in (tmp_path / "corpus").rglob("*") if p.is_file()
    }
    assert check_index(db, versions, dims=1024, exact=False) == []
    committed = [json.loads(line) for line in full.stdout.splitlines()]
    assert 0 < len(committed) < 400  # some groups made it before the disk filled

    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["indexed"] + len(committed) >= 400
    assert check_index(db, versions, dims=1024, exact=False) == []


def _hash(path: Path) -> str:
    import hashlib

    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def test_the_wal_stays_small_during_a_long_run(tmp_path: Path) -> None:
    make_tree(tmp_path / "corpus", 1500, words=300)
    db, wal = tmp_path / "idx.db", tmp_path / "idx.db-wal"
    proc = subprocess.Popen([*RAGIDX, "index", "corpus", "--db", str(db), "--quiet"], cwd=tmp_path)
    largest = 0
    while proc.poll() is None:
        if wal.exists():
            largest = max(largest, wal.stat().st_size)
        time.sleep(0.005)
    assert proc.returncode == 0
    assert db.stat().st_size > 20 * 1024**2
    # Checkpoints keep reusing the WAL from its start: it stays near SQLite's 1,000-page
    # autocheckpoint plus one commit group, however large the index grows.
    assert 0 < largest < 12 * 1024**2, largest
    assert not wal.exists() or wal.stat().st_size == 0  # emptied at the end of the run


def test_ctrl_c_during_the_dims_probe(tmp_path: Path) -> None:
    make_tree(tmp_path / "corpus", 5)
    with serve(Faults(dims=DIMS, hang_first=1000, hang_seconds=60)) as server:
        args = [
            *RAGIDX, "index", "corpus", "--db", str(tmp_path / "idx.db"), "--provider",
            "openai", "--base-url", f"{server.url}/v1", "--model", "m",
        ]  # fmt: skip
        proc = start(args, tmp_path)
        deadline = time.monotonic() + 30
        while server.counters.requests < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc, timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted: stopped before indexing began" in err
