"""Many workers on one Postgres index, killed with SIGKILL at random moments, again and again:
the crash test across workers in CI, and `bench/soak.py --workers N` for long runs.

Each round starts `workers` processes of `ragidx index CORPUS --db URL --shard K/N` at once,
waits a random moment, and kills every one still running (so a round makes up to N kills);
some rounds edit files first. After every round the index must hold each file once, as one
whole version that the file really had, with its chunks complete and each chunk's vector
cached. After the last round, the N parts are let finish: then every file is indexed exactly
once with its current content, every vector is exactly the server's for its input, no staging
row and no run lock is left (a new run of each part starts at once, `--no-wait`), and every
killed run shows as died, none as running.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragidx.testing.server import EmbeddingServer, expected_vector
from ragidx.testing.soak import content_hash, edit_corpus

__all__ = ["WorkersSoakResult", "check_postgres_index", "soak_workers"]


@dataclass
class WorkersSoakResult:
    rounds: int = 0
    kills: int = 0
    finished_early: int = 0
    edits: int = 0
    checks_passed: int = 0
    files: int = 0
    chunks: int = 0
    inputs_sent: int = 0
    distinct_cached: int = 0
    indexed_after: list[int] = field(default_factory=list)
    """Files indexed (any version) after each round: that the kills fell mid-work."""
    problems: list[str] = field(default_factory=list)


@contextmanager
def _connect(url: str) -> Iterator[Any]:
    import psycopg

    from ragidx.store.postgres.connect import target

    where = target(url)
    conn = psycopg.connect(where.conninfo, autocommit=True)
    try:
        conn.execute(f'SET search_path = "{where.schema}", public')
        yield conn
    finally:
        conn.close()


def check_postgres_index(
    url: str, versions: dict[str, set[str]], *, dims: int, current: dict[str, str] | None = None
) -> list[str]:
    """What is wrong with the Postgres index at `url`; [] when nothing is. With `current`
    (each path's hash now), also: every file indexed exactly once with it, every vector the
    server's, nothing staged, no run left running."""
    with _connect(url) as conn:
        if conn.execute("SELECT to_regclass('files')").fetchone()[0] is None:
            return []  # killed before its schema was committed: nothing indexed, nothing lost
        return _problems(conn, versions, dims, current)


def _problems(
    conn: Any, versions: dict[str, set[str]], dims: int, current: dict[str, str] | None
) -> list[str]:
    problems: list[str] = []
    rows = conn.execute(
        "SELECT path, count(*) FROM files WHERE stage IS NULL GROUP BY path HAVING count(*) > 1"
    ).fetchall()
    problems += [f"{path}: {n} rows" for path, n in rows]
    files = conn.execute(
        "SELECT id, path, content_hash, chunks FROM files"
        " WHERE stage IS NULL AND status = 'indexed'"
    ).fetchall()
    for file_id, path, digest, count in files:
        if digest not in versions.get(path, set()):
            problems.append(f"{path}: stored hash {digest} is no version the file had")
        elif current is not None and digest != current.get(path):
            problems.append(f"{path}: an old version after the last run")
        chunks = conn.execute(
            "SELECT c.ordinal, e.id IS NOT NULL, c.visible FROM chunks c"
            " LEFT JOIN embeddings e ON e.id = c.embedding_id WHERE c.file_id = %s",
            (file_id,),
        ).fetchall()
        if sorted(r[0] for r in chunks) != list(range(count)):
            problems.append(f"{path}: {len(chunks)} chunks stored, {count} recorded")
        if not all(r[1] and r[2] for r in chunks):
            problems.append(f"{path}: a chunk without its vector, or hidden")
    if current is not None:
        problems += _complete(conn, {path for _, path, _, _ in files}, current, dims)
    return problems


def _complete(conn: Any, indexed: set[str], current: dict[str, str], dims: int) -> list[str]:
    missing = sorted(set(current) - indexed)
    problems = [f"{path}: not indexed after the last run" for path in missing]
    (staged,) = conn.execute("SELECT count(*) FROM files WHERE stage IS NOT NULL").fetchone()
    if staged:
        problems.append(f"{staged} staging rows left after complete runs")
    rows = conn.execute(
        "SELECT coalesce(c.input, c.text), e.vector::real[] FROM chunks c"
        " JOIN embeddings e ON e.id = c.embedding_id"
    )
    for text, vector in rows:
        if not np.allclose(np.array(vector, "<f4"), expected_vector(text, dims), atol=1e-6):
            problems.append(f"wrong vector for {text[:40]!r}")
            break
    return problems


def soak_workers(
    corpus: Path,
    url: str,
    server: EmbeddingServer,
    versions: dict[str, set[str]],
    *,
    kills: int,
    workers: int = 4,
    seed: int = 5,
    batch_size: int = 8,
    delay: tuple[float, float] = (0.5, 3.0),
    edit_every: int = 1,
    edits: int | None = None,
    max_rounds: int | None = None,
) -> WorkersSoakResult:
    """Rounds of `workers` parts killed at random moments until `kills` kills, then the
    parts let finish, then the checks (`check_postgres_index`). Every `edit_every` rounds,
    `edits` files (default: a quarter of the tree) get new text first: once the tree is
    indexed, a round has only those to do, and a part that finishes before its moment is
    not a kill (measured: 200 kills in 78 rounds this way; with 4 edits every 3 rounds and
    2-8 s moments, 22 kills in ~200 rounds on a quiet machine). After `max_rounds` (default
    10 a kill wanted) it stops short, with a problem that says so, rather than run on."""
    rng = random.Random(seed)
    dims = server.faults.dims
    edits = max(len(versions) // 4, 1) if edits is None else edits
    max_rounds = 10 * kills if max_rounds is None else max_rounds

    def command(part: int) -> list[str]:
        return [
            sys.executable, "-m", "ragidx", "index", str(corpus), "--db", url,
            "--shard", f"{part}/{workers}", "--provider", "openai",
            "--base-url", f"{server.url}/v1", "--model", "soak-model",
            "--dimensions", str(dims), "--batch-size", str(batch_size),
            "--concurrency", "2", "--workers", "0", "--quiet", "--no-progress",
        ]  # fmt: skip

    result = WorkersSoakResult()
    while result.kills < kills:
        if result.rounds >= max_rounds:
            result.problems.append(f"only {result.kills} kills in {result.rounds} rounds")
            break
        result.rounds += 1
        if edit_every and result.rounds % edit_every == 0:
            edit_corpus(corpus, rng, versions, edits)
            result.edits += edits
        procs = [
            subprocess.Popen(command(k), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for k in range(1, workers + 1)
        ]
        time.sleep(rng.uniform(*delay))
        for proc in rng.sample(procs, len(procs)):
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                result.kills += 1
            else:
                result.finished_early += 1
            time.sleep(rng.uniform(0, 0.2))  # the parts die at different moments
        for proc in procs:
            proc.wait()
        problems = check_postgres_index(url, versions, dims=dims)
        result.indexed_after.append(_indexed(url))
        result.problems += [f"after round {result.rounds}: {p}" for p in problems]
        result.checks_passed += not problems
    finals = [
        subprocess.Popen(
            [*command(k), "--no-wait"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for k in range(1, workers + 1)
    ]
    for k, proc in enumerate(finals, 1):
        _, err = proc.communicate()
        if proc.returncode != 0:
            why = f"final run of part {k} exited {proc.returncode}: {err[-400:]!r}"
            result.problems.append(why)
    current = {str(p.resolve()): content_hash(p) for p in corpus.rglob("*.md")}
    problems = check_postgres_index(url, versions, dims=dims, current=current)
    result.problems += [f"after the final runs: {p}" for p in problems]
    result.checks_passed += not problems
    with _connect(url) as conn:
        (result.distinct_cached,) = conn.execute("SELECT count(*) FROM embeddings").fetchone()
        result.files, result.chunks = conn.execute(
            "SELECT count(*), coalesce(sum(chunks), 0) FROM files"
            " WHERE stage IS NULL AND status = 'indexed'"
        ).fetchone()
    result.problems += _runs_problems(url)
    result.inputs_sent = server.counters.inputs
    return result


def _indexed(url: str) -> int:
    with _connect(url) as conn:
        if conn.execute("SELECT to_regclass('files')").fetchone()[0] is None:
            return 0
        (count,) = conn.execute(
            "SELECT count(*) FROM files WHERE stage IS NULL AND status = 'indexed'"
        ).fetchone()
    return int(count)


def _runs_problems(url: str) -> list[str]:
    """Every run ended or shows as died; none is left looking alive."""
    from ragidx.store.locate import open_for_reading

    store = open_for_reading(url)
    try:
        workers = store.stats().workers
    finally:
        store.close()
    return [f"run #{w.run_id} still {w.status}" for w in workers if w.status == "running"]
