"""Kill `ragidx index` with SIGKILL at random moments, again and again, and check the index
after every kill: used by the crash test in CI and by `bench/soak.py` for long runs.

After each kill the index must pass `PRAGMA integrity_check`, hold every file as one whole
version (a version the file really had), with its chunks complete and each chunk's vector
cached. After a last run that is let finish, every chunk's vector must be exactly the
server's vector for its input, and the inputs the server embedded across all runs may
exceed the distinct inputs in the cache only by what was in flight at the kills.
"""

from __future__ import annotations

import hashlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragidx.testing.server import EmbeddingServer, expected_vector

__all__ = ["SoakResult", "check_index", "content_hash", "edit_corpus", "make_corpus", "soak"]

_BOILERPLATE = (
    "This page is part of the operations handbook. Ask in the platform channel if anything"
    " here is out of date, and say which page and section."
)
_WORDS = (
    "queue worker retry backoff lease timeout schedule broker deploy metric alert token secret"
    " config batch chunk vector index shard replica failover snapshot"
).split()


@dataclass
class SoakResult:
    kills: int = 0
    finished_early: int = 0
    checks_passed: int = 0
    inputs_sent: int = 0
    distinct_cached: int = 0
    in_flight_bound: int = 0
    files: int = 0
    chunks: int = 0
    edits: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def excess(self) -> int:
        return self.inputs_sent - self.distinct_cached


def _text(rng: random.Random, i: int, version: int) -> str:
    paragraphs = [
        " ".join(rng.choice(_WORDS) + str(rng.randrange(40)) for _ in range(rng.randrange(25, 70)))
        for _ in range(rng.randrange(2, 6))
    ]
    return (
        f"# Page {i}\n\n{_BOILERPLATE}\n\n"
        + "\n\n".join(paragraphs)
        + (f"\n\nRevision {version}.\n" if version else "\n")
    )


def make_corpus(root: Path, files: int, seed: int = 11) -> dict[str, set[str]]:
    """Markdown pages sharing a boilerplate paragraph; returns each path's content hashes."""
    rng = random.Random(seed)
    versions: dict[str, set[str]] = {}
    for i in range(files):
        path = root / f"area{i % 12}" / f"page{i:04d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, _text(rng, i, 0), versions)
    return versions


def content_hash(path: Path) -> str:
    """The file's content hash as the index records it."""
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def _write(path: Path, text: str, versions: dict[str, set[str]]) -> None:
    data = text.encode()
    versions.setdefault(str(path.resolve()), set()).add(
        hashlib.blake2b(data, digest_size=16).hexdigest()
    )
    tmp = path.with_suffix(".tmp~")
    tmp.write_bytes(data)
    tmp.replace(path)  # an editor's atomic save


def edit_corpus(root: Path, rng: random.Random, versions: dict[str, set[str]], count: int) -> None:
    """Rewrite `count` random pages with new text, recording their new hashes."""
    pages = sorted(root.rglob("*.md"))
    for path in rng.sample(pages, count):
        i = int(path.stem.removeprefix("page"))
        _write(path, _text(rng, i, rng.randrange(1, 1000)), versions)


def check_index(db: Path, versions: dict[str, set[str]], *, dims: int, exact: bool) -> list[str]:
    """What is wrong with the index; [] when nothing is. With `exact`, also compare every
    vector with the server's and require that no run is left half done."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return _problems(conn, versions, dims, exact)
    finally:
        conn.close()


def _problems(
    conn: sqlite3.Connection, versions: dict[str, set[str]], dims: int, exact: bool
) -> list[str]:
    problems: list[str] = []
    integrity = conn.execute("PRAGMA integrity_check").fetchall()
    if integrity != [("ok",)]:
        problems.append(f"integrity_check: {integrity[:3]}")
    if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
        return problems  # killed before its schema was committed: nothing indexed, nothing lost
    files = conn.execute(
        "SELECT id, path, content_hash, chunks FROM files WHERE status = 'indexed'"
    ).fetchall()
    for file_id, path, digest, count in files:
        if digest not in versions.get(path, set()):
            problems.append(f"{path}: stored hash {digest} is no version the file had")
        rows = conn.execute(
            "SELECT c.ordinal, e.id IS NOT NULL FROM chunks c"
            " LEFT JOIN embeddings e ON e.id = c.embedding_id WHERE c.file_id = ?",
            (file_id,),
        ).fetchall()
        if sorted(r[0] for r in rows) != list(range(count)):
            problems.append(f"{path}: {len(rows)} chunks stored, {count} recorded")
        if not all(r[1] for r in rows):
            problems.append(f"{path}: a chunk without its vector")
    if exact:
        problems += _exact(conn, dims)
    return problems


def _exact(conn: sqlite3.Connection, dims: int) -> list[str]:
    problems: list[str] = []
    (staged,) = conn.execute("SELECT count(*) FROM files WHERE status = 'staging'").fetchone()
    if staged:
        problems.append(f"{staged} staged files left after a complete run")
    rows = conn.execute(
        "SELECT coalesce(c.input, c.text), v.vector FROM chunks c"
        " JOIN vectors v ON v.chunk_id = c.id"
    )
    for text, blob in rows:
        if not np.allclose(np.frombuffer(blob, "<f4"), expected_vector(text, dims), atol=1e-6):
            problems.append(f"wrong vector for {text[:40]!r}")
            break
    return problems


def soak(
    corpus: Path,
    db: Path,
    server: EmbeddingServer,
    versions: dict[str, set[str]],
    *,
    kills: int,
    seed: int = 5,
    batch_size: int = 8,
    concurrency: int = 2,
    delay: tuple[float, float] = (0.3, 2.0),
    edit_every: int = 4,
) -> SoakResult:
    """`kills` runs killed at random moments (edits between some), then one let finish."""
    rng = random.Random(seed)
    dims = server.faults.dims
    command = [
        sys.executable, "-m", "ragidx", "index", str(corpus), "--db", str(db),
        "--provider", "openai", "--base-url", f"{server.url}/v1", "--model", "soak-model",
        "--dimensions", str(dims), "--batch-size", str(batch_size),
        "--concurrency", str(concurrency), "--quiet", "--no-progress",
    ]  # fmt: skip
    result = SoakResult()
    for n in range(kills):
        if edit_every and n % edit_every == edit_every - 1:
            edit_corpus(corpus, rng, versions, 3)
            result.edits += 3
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(*delay))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            result.kills += 1
        else:
            result.finished_early += 1
        proc.wait()
        problems = check_index(db, versions, dims=dims, exact=False) if db.exists() else []
        result.problems += [f"after run {n + 1}: {p}" for p in problems]
        result.checks_passed += not problems
    final = subprocess.run(command, capture_output=True, text=True, check=False)
    if final.returncode != 0:
        result.problems.append(f"final run exited {final.returncode}: {final.stderr[-500:]}")
    problems = check_index(db, versions, dims=dims, exact=True)
    result.problems += [f"after the final run: {p}" for p in problems]
    result.checks_passed += not problems
    conn = sqlite3.connect(db)
    result.distinct_cached = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    result.files, result.chunks = conn.execute(
        "SELECT count(*), sum(chunks) FROM files WHERE status = 'indexed'"
    ).fetchone()
    conn.close()
    result.inputs_sent = server.counters.inputs
    # At a kill, at most `concurrency` requests of `batch_size` inputs were out, and as
    # many answers may have come back without being committed yet.
    result.in_flight_bound = result.kills * 2 * concurrency * batch_size
    return result
