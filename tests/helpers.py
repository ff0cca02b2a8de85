"""What many test modules share: running the CLI, writing trees, reading an index back."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragidx.config import ChunkConfig, WalkConfig
from ragidx.embed import HashEmbedder
from ragidx.errors import RejectedError
from ragidx.models import FileInfo
from ragidx.pipeline.planner import Planner
from ragidx.store import SqliteStore
from ragidx.testing.server import EmbeddingServer, expected_vector
from ragidx.walk.walker import absolute, walk_listings

ROOT = Path(__file__).resolve().parent.parent


SAMPLE_DOCS = ROOT / "sample_docs"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]

    def files(self) -> dict[str, dict[str, Any]]:
        return {r["path"]: r for r in self.json_lines() if r["event"] == "file"}

    def summary(self) -> dict[str, Any]:
        (summary,) = [r for r in self.json_lines() if r["event"] == "summary"]
        return summary


Cli = Callable[..., Result]


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def file_info(path: Path, data: bytes) -> FileInfo:
    """`data` written to `path`, and the `FileInfo` a walk would give it."""
    path.write_bytes(data)
    st = path.stat()
    return FileInfo(str(path), st.st_size, st.st_mtime_ns)


def stored_vectors(db: Path = Path("idx.db")) -> list[tuple[str, str, Any]]:
    """(path, embedder input, vector) for every chunk the index holds a vector for."""
    rows = db_rows(
        db,
        "SELECT f.path, coalesce(c.input, c.text), v.vector FROM chunks c"
        " JOIN files f ON f.id = c.file_id JOIN vectors v ON v.chunk_id = c.id",
    )
    return [(path, text, np.frombuffer(blob, "<f4")) for path, text, blob in rows]


def vectors_by_file(db: Path = Path("idx.db")) -> dict[str, list[tuple[str, Any]]]:
    """`stored_vectors`, grouped by file name."""
    out: dict[str, list[tuple[str, Any]]] = {}
    for path, text, vector in stored_vectors(db):
        out.setdefault(Path(path).name, []).append((text, vector))
    return out


def traced_plans(db: Path, root: str) -> tuple[list[Any], list[str]]:
    """The planner's plans for a walk of `root` against the index `db`, and every SQL
    statement it ran to make them."""
    store = SqliteStore.open(db)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        planner = Planner(store, ChunkConfig().fingerprint)
        plans = planner.plan(list(walk_listings([absolute(root)], WalkConfig())))
    finally:
        store.close()
    return plans, statements


def db_rows(db: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


class PoisonEmbedder(HashEmbedder):
    """The hash embedder, except that a batch holding "POISON" is refused, as a server would."""

    provider = "poison"
    calls = 0

    async def embed(self, texts: Sequence[str]) -> Any:
        PoisonEmbedder.calls += 1
        if any("POISON" in t for t in texts):
            raise RejectedError("the server rejected an input (400)")
        return await super().embed(texts)


def make_tree(root: Path, count: int, words: int = 60) -> None:
    """`count` small Markdown files in nested folders, each with its own vocabulary."""
    for i in range(count):
        folder = root / f"d{i % 20:02d}" / f"e{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        body = " ".join(f"word{(i * 31 + j) % 997}" for j in range(words))
        (folder / f"f{i:06d}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")


def env_without(*names: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in names:
        env.pop(name, None)
    return env


class FakeClock:
    """Time that passes only when someone sleeps; every sleep is recorded (to the microsecond)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.now += seconds


RAGIDX = [sys.executable, "-m", "ragidx"]


def index_args(url: str, db: Path, *extra: str, dims: int = 32) -> list[str]:
    """`ragidx index corpus` against the test server at `url`, as a child process runs it."""
    return [
        *RAGIDX, "index", "corpus", "--db", str(db), "--provider", "openai",
        "--base-url", f"{url}/v1", "--model", "m", "--dimensions", str(dims), *extra,
    ]  # fmt: skip


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """A command (`RAGIDX + [...]`) as a child process with piped text output."""
    return subprocess.Popen(
        args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def read_lines(proc: subprocess.Popen[str], count: int) -> list[str]:
    """The first `count` lines of stdout, as they come."""
    assert proc.stdout is not None
    lines = []
    while len(lines) < count:
        line = proc.stdout.readline()
        assert line, f"ragidx ended before {count} lines"
        lines.append(line)
    return lines


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[str, str]:
    """The rest of stdout and stderr, then the exit. `communicate` would skip what
    `readline` already buffered."""
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stdout, proc.stderr:
        out = proc.stdout.read()
        err = proc.stderr.read()
    proc.wait(timeout=timeout)
    return out, err


# The HTTP end-to-end tests' corpus and run: 12 small files against the test server.
DIMS = 64
FILES = {
    f"docs/f{i:02d}.md": f"# Note {i}\n\nParagraph about topic {i} and more.\n" for i in range(12)
}


def index_with(
    cli: Cli, server: EmbeddingServer, *args: str, provider: str = "openai", db: str = "idx.db"
) -> Result:
    base = server.url + ("/v1" if provider == "openai" else "")
    dims = ["--dimensions", str(DIMS)] if provider == "openai" else []
    return cli(
        "index", "docs", "--db", db, "--json", "--provider", provider,
        "--base-url", base, "--model", "test-model", *dims, *args,
    )  # fmt: skip


def stored(db: Path = Path("idx.db")) -> dict[str, list[tuple[str, Any]]]:
    return vectors_by_file(db)


def assert_exact(expected_files: int) -> None:
    files = stored()
    assert len(files) == expected_files
    for chunks in files.values():
        for text, vector in chunks:
            assert np.allclose(vector, expected_vector(text, DIMS), atol=1e-6)


LONG = "# Note 7\n\n" + " ".join(f"word{i}" for i in range(80)) + "\n"


PARAGRAPHS = [f"Paragraph {i} says something about topic {i} in its own words." for i in range(40)]


def doc_of(paragraphs: list[str]) -> str:
    return "# Notes\n\n" + "\n\n".join(paragraphs) + "\n"


def fts_query(query: str) -> str | None:
    """The FTS5 expression the SQLite store searches for `query`, None for no terms."""
    from ragidx.query.search import query_terms
    from ragidx.store.queries import fts5_match

    terms = query_terms(query)
    return fts5_match(terms) if terms else None
