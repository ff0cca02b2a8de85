"""SIGTERM, what `timeout`, systemd and Kubernetes send first, is the first Ctrl-C: no new
work, what is complete is committed, the summary is printed, and the exit code is 143."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from helpers import finish, index_args, make_tree, read_lines, start

from ragidx.testing.server import Faults, serve

DIMS = 32


def test_sigterm_commits_what_is_complete_prints_the_summary_and_exits_143(
    tmp_path: Path,
) -> None:
    make_tree(tmp_path / "corpus", 300)
    db = tmp_path / "idx.db"
    with serve(Faults(dims=DIMS, latency=0.4)) as server:
        args = index_args(server.url, db, "--json", "--batch-size", "4", "--concurrency", "3")
        proc = start(args, tmp_path)
        lines = read_lines(proc, 5)
        proc.send_signal(signal.SIGTERM)
        out, err = finish(proc)
        sent = server.counters.inputs
    assert proc.returncode == 143, err
    assert "stopping: no new work" in err
    assert "interrupted" in err  # the summary table says how the run ended
    records = [json.loads(line) for line in lines + out.splitlines()]
    summary = records[-1]
    assert summary["event"] == "summary" and summary["interrupted"] is True
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    committed = {p for (p,) in conn.execute("SELECT path FROM files WHERE status = 'indexed'")}
    cached = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert conn.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    conn.close()
    # Every file reported was committed, and every answer that came back is in the cache.
    reported = {str(tmp_path / r["path"]) for r in records if r["event"] == "file"}
    assert reported == committed and 5 <= len(committed) < 300
    assert cached == sent == summary["embedded"]

    with serve(Faults(dims=DIMS)) as server:
        again = subprocess.run(
            index_args(server.url, db, "--json", "--quiet"),
            cwd=tmp_path, capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])
    assert summary["unchanged"] == len(committed)
    assert summary["indexed"] == 300 - len(committed)


def test_a_second_signal_after_sigterm_quits_at_once(tmp_path: Path) -> None:
    make_tree(tmp_path / "corpus", 50)
    for second, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        db = tmp_path / f"idx-{second.name}.db"
        with serve(Faults(dims=DIMS, hang_first=1000, hang_seconds=60)) as server:
            # Every request hangs: the first signal alone would wait out the 30 s grace period.
            proc = start(index_args(server.url, db, "--timeout", "30"), tmp_path)
            deadline = time.monotonic() + 30
            while server.counters.requests < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            proc.send_signal(second)
            started = time.monotonic()
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == code, err
        assert time.monotonic() - started < 10
        assert "stopping" in err and "again: quitting now" in err
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()
