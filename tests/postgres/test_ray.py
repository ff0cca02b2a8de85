"""`ragidx index --ray` on a local Ray cluster into a real PostgreSQL: the driver walks,
plans and removes; Ray tasks read, embed and commit. Every file is indexed once with the
server's vectors; a re-run sends no task; a Ray worker that dies loses no file and
duplicates none; Ctrl-C on the driver exits 130 and keeps what was committed.

One Ray cluster for the session (tests/ray_cluster.py); tests/conftest.py sends every test of
this module to the same xdist worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import RAGIDX, Cli, make_tree
from ray_cluster import DieOnce, ray_env

from ragidx import read
from ragidx.store.postgres.connect import DEFAULT_SCHEMA
from ragidx.testing.server import EmbeddingServer, Faults, expected_vector, serve

pytestmark = [pytest.mark.postgres, pytest.mark.ray, pytest.mark.xdist_group("ray")]

DIMS = 64
FILES = 60


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    make_tree(root, FILES)
    return root


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    with serve(Faults(dims=DIMS)) as s:
        yield s


def _index(cli: Cli, url: str, tree: Path, *extra: str) -> dict[str, Any]:
    """An index run through Ray; its JSON lines: each file's, and the summary."""
    result = cli("index", str(tree), "--db", url, "--ray", "local", "--json", *extra)
    assert result.exit_code in (0, 1), result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    (summary,) = [r for r in lines if r["event"] == "summary"]
    files = [r for r in lines if r["event"] == "file"]
    return {"code": result.exit_code, "summary": summary, "files": files, "err": result.stderr}


def _with_server(server: EmbeddingServer) -> list[str]:
    return [
        "--provider", "openai", "--base-url", f"{server.url}/v1", "--model", "m",
        "--dimensions", str(DIMS),
    ]  # fmt: skip


def _progress(url: str) -> list[dict[str, Any]]:
    """Each run's row (what `ragidx stats` shows of its workers), oldest first."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            f"SELECT id, worker, shard, status, summary FROM {DEFAULT_SCHEMA}.runs ORDER BY id"
        ).fetchall()


def _export(cli: Cli, url: str) -> list[dict[str, Any]]:
    exported = cli("export", "--db", url, "--vectors")
    assert exported.exit_code == 0, exported.stderr
    return [json.loads(line) for line in exported.stdout.splitlines()]


def _indexed_once(cli: Cli, url: str, tree: Path) -> list[dict[str, Any]]:
    """Every file under `tree` indexed, each once: its chunks, in order, with no repeats."""
    rows = _export(cli, url)
    by_file: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_file.setdefault(str(Path(row["path"]).resolve()), []).append(row)
    on_disk = {str(p.resolve()) for p in tree.rglob("*") if p.is_file()}
    assert set(by_file) == on_disk
    for path, chunks in by_file.items():
        texts = [c["text"] for c in chunks]
        assert len(texts) == len(set(texts)), f"{path}: a chunk stored twice"
        assert Path(path).read_text().startswith(texts[0].split("\n")[0])
    return rows


def test_ray_indexes_each_file_once_with_the_servers_vectors(
    cli: Cli, pg_url: str, tree: Path, server: EmbeddingServer, ray_address: str
) -> None:
    first = _index(cli, pg_url, tree, *_with_server(server))
    assert first["code"] == 0
    assert first["summary"]["indexed"] == FILES and first["summary"]["failed"] == 0
    assert sorted(f["path"] for f in first["files"]) == sorted(
        {f["path"] for f in first["files"]}
    )  # one line a file
    rows = _indexed_once(cli, pg_url, tree)
    for row in rows:
        embedded = row.get("input", row["text"])
        assert np.allclose(row["vector"], expected_vector(embedded, DIMS), atol=1e-4)

    workers = _progress(pg_url)
    parts = [w for w in workers if (w["shard"] or "").startswith("ray ")]
    (driver,) = [w for w in workers if w["shard"] is None]
    assert parts and all(w["status"] == "completed" for w in parts)
    assert sum(w["summary"]["indexed"] for w in parts) == FILES
    here = f"{socket.gethostname()}:{os.getpid()}"
    assert driver["worker"] == here and all(w["worker"] != here for w in parts)

    again = _index(cli, pg_url, tree, *_with_server(server))
    assert again["summary"]["unchanged"] == FILES and again["summary"]["indexed"] == 0
    assert len(_progress(pg_url)) == len(workers) + 1  # the driver's run: no task sent

    edited = next(tree.rglob("f000007.md"))
    edited.write_text("# Note 7\n\nRewritten: the zebra runbook.\n")
    next(tree.rglob("f000011.md")).unlink()
    third = _index(cli, pg_url, tree, *_with_server(server))
    counts = {k: third["summary"][k] for k in ("indexed", "removed", "unchanged", "failed")}
    assert counts == {"indexed": 1, "removed": 1, "unchanged": FILES - 2, "failed": 0}
    rows = _indexed_once(cli, pg_url, tree)
    assert any("zebra" in row["text"] for row in rows)


def test_ray_with_the_offline_embedder(cli: Cli, pg_url: str, tree: Path, ray_address: str) -> None:
    first = _index(cli, pg_url, tree)
    assert first["code"] == 0 and first["summary"]["indexed"] == FILES
    # The driver, last to finish, builds the HNSW graph and says so.
    assert "finishing: building the vector index over" in first["err"]
    _indexed_once(cli, pg_url, tree)
    again = _index(cli, pg_url, tree)
    assert again["summary"]["unchanged"] == FILES


@pytest.fixture
def die_once() -> Iterator[None]:
    read.register(DieOnce())
    try:
        yield
    finally:
        read.unregister(DieOnce.content_type)


def test_a_task_whose_worker_dies_is_run_again_and_loses_no_file(
    cli: Cli, pg_url: str, tree: Path, tmp_path: Path, die_once: None, ray_address: str
) -> None:
    marker = tmp_path / "died"
    (tree / "d03" / "late.boom").write_text(f"marker: {marker}\n\n# Late\n\nSaid once.\n")
    run = _index(cli, pg_url, tree)
    assert marker.exists()  # a worker died reading it
    assert int(marker.read_text()) != os.getpid()
    assert run["code"] == 0, run
    summary = run["summary"]
    # The task ran again: what its first try committed is unchanged, the rest indexed.
    assert summary["indexed"] + summary["unchanged"] == FILES + 1
    assert summary["failed"] == 0
    _indexed_once(cli, pg_url, tree)
    assert _index(cli, pg_url, tree)["summary"]["unchanged"] == FILES + 1


def test_files_of_a_task_that_dies_past_its_retries_are_failed_then_picked_up(
    cli: Cli, pg_url: str, tree: Path, die_once: None, ray_address: str
) -> None:
    doomed = tree / "d05" / "doomed.boom"
    doomed.write_text("marker: always\n\n# Doomed\n")
    run = _index(cli, pg_url, tree)
    assert run["code"] == 1
    failed = {f["path"] for f in run["files"] if f["status"] == "failed"}
    assert "tree/d05/doomed.boom" in failed
    assert all("Ray task failed" in f["reason"] for f in run["files"] if f["status"] == "failed")
    summary = run["summary"]
    assert summary["indexed"] + summary["failed"] == FILES + 1

    doomed.unlink()
    rest = _index(cli, pg_url, tree)
    assert rest["code"] == 0
    assert rest["summary"]["indexed"] + rest["summary"]["unchanged"] == FILES
    assert rest["summary"]["indexed"] == len(failed) - 1  # those its tries left to this run
    _indexed_once(cli, pg_url, tree)


def test_ray_needs_a_postgres_index(cli: Cli, tree: Path, tmp_path: Path) -> None:
    result = cli("index", str(tree), "--db", str(tmp_path / "idx.db"), "--ray", "local")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --ray needs a Postgres index")
    assert not (tmp_path / "idx.db").exists()


def _indexed(cli: Cli, url: str) -> int:
    stats = cli("stats", "--db", url, "--json")
    assert stats.exit_code == 0, stats.stderr
    return int(json.loads(stats.stdout)["files"]["indexed"])


def test_ctrl_c_cancels_the_tasks_keeps_what_was_committed_and_exits_130(
    cli: Cli, pg_url: str, tree: Path, tmp_path: Path, ray_address: str
) -> None:
    # Slow answers (0.3 s a request, one input each): the tasks (about 30 files each) are
    # well under way, not over, when the signal comes.
    env = {**os.environ, **ray_env()}
    with serve(Faults(dims=DIMS, latency=0.3)) as slow:
        args = [
            *RAGIDX, "index", str(tree), "--db", pg_url, "--ray", ray_address, "--json",
            "--batch-size", "1", "--concurrency", "1", *_with_server(slow),
        ]  # fmt: skip
        proc = subprocess.Popen(
            args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            while (committed := _indexed(cli, pg_url)) < 3:  # by the tasks, file by file
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        (summary,) = [r for r in map(json.loads, out.splitlines()) if r["event"] == "summary"]
        assert summary["interrupted"] is True
        kept = _indexed(cli, pg_url)
        assert 3 <= committed <= kept < FILES
        driver = [w for w in _progress(pg_url) if w["shard"] is None]
        assert [w["status"] for w in driver] == ["interrupted"]

        # What was committed stays; the next run indexes the rest, each file once.
        rest = _index(cli, pg_url, tree, *_with_server(slow))
    assert rest["code"] == 0
    assert rest["summary"]["unchanged"] == kept
    assert rest["summary"]["indexed"] == FILES - kept
    _indexed_once(cli, pg_url, tree)
