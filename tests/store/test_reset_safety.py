"""`--reset` takes effect only once the new embedder has answered (issue 14, part 2).

An index built against the real test server, then `index --reset` against a server that is
not there, refuses the key, fails every request, redirects, answers vectors of zeros, or
refuses every file: each leaves the files, chunks, vectors, the embedding cache and the
manifest exactly as they were, and the old index still searches. A reset that does get
vectors replaces all of it, in the transaction of its first vectors. On SQLite and on
Postgres (`index_db`).
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import RAGIDX, Cli, Result, finish, start, write
from pg import index_rows, open_store, stored_vectors_in

from ragidx.store import embedding_key
from ragidx.testing.server import EmbeddingServer, Faults, expected_vector, serve

DIMS = 64
DOCS = {
    **{
        f"docs/n{i}.md": f"# Note {i}\n\nA paragraph about topic {i} and retries.\n"
        for i in range(6)
    },
    "docs/picture.bin": b"\x89PNG\r\n\x1a\n\x00\x00" * 40,  # skipped: a row without vectors
}
# Everything a reset would destroy; not `runs`, which records the attempt.
TABLES = ("files", "chunks", "embeddings", "manifest", "dir_stamps")


def free_port() -> int:
    """A port nothing listens on (taken from the system, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot(db: str) -> dict[str, Any]:
    """Every row of the tables a reset empties, and what full-text search finds."""
    rows: dict[str, Any] = {t: index_rows(db, f"SELECT * FROM {t} ORDER BY 1") for t in TABLES}
    store = open_store("postgres" if "://" in db else "sqlite", db)
    try:
        rows["fts"] = sorted(store.text_search(["topic"], 100))
    finally:
        store.close()
    return rows


def index(cli: Cli, db: str, url: str, *args: str, model: str = "m") -> Result:
    return cli(
        "index", "docs", "--db", db, "--json", "--provider", "openai",
        "--base-url", f"{url}/v1", "--model", model, *args,
    )  # fmt: skip


@pytest.fixture
def built(cli: Cli, work: Path, index_db: str) -> Iterator[dict[str, Any]]:
    """An index of `docs` built against a working server; its rows as they are."""
    write(work, DOCS)
    with serve(Faults(dims=DIMS)) as server:
        first = index(cli, index_db, server.url)
    assert first.exit_code == 0, first.stderr
    assert first.summary()["indexed"] == 6 and first.summary()["skipped"] == 1
    before = snapshot(index_db)
    assert len(before["embeddings"]) == 6 and len(before["fts"]) == 6
    yield before


def still_searches(cli: Cli, db: str) -> None:
    """The old index answers a text search, and its manifest still names its server."""
    hits = cli("search", "topic", "--db", db, "--mode", "text", "--json", "-k", "10")
    assert hits.exit_code == 0, hits.stderr
    assert len(hits.stdout.splitlines()) == 6


# name, server faults (None: nothing listens), extra arguments, exit code, words in stderr
FAILURES = [
    ("refused", None, (), 2, "cannot connect to http://127.0.0.1:"),
    ("refused-dims", None, ("--dimensions", "64"), 2, "cannot connect to http://127.0.0.1:"),
    ("401", Faults(dims=DIMS, api_key="sk-right"), (), 2, "HTTP 401"),
    ("401-dims", Faults(dims=DIMS, api_key="sk-right"), ("--dimensions", "64"), 2, "HTTP 401"),
    ("500", Faults(dims=DIMS, fail_first=10**6), ("--max-retries", "1"), 2, "HTTP 500"),
    (
        "500-dims",
        Faults(dims=DIMS, fail_first=10**6),
        ("--max-retries", "1", "--dimensions", "64"),
        1,
        "",
    ),
    ("every-file-refused", Faults(dims=DIMS, poison="topic"), ("--dimensions", "64"), 1, ""),
    (
        "zero-vectors",
        Faults(dims=DIMS, zero_vectors=10**6),
        ("--max-retries", "1", "--dimensions", "64"),
        1,
        "",
    ),
    (
        "redirect",
        Faults(dims=DIMS, redirect="http://127.0.0.1:9/v1/embeddings"),
        (),
        2,
        "redirects to",
    ),
]


@pytest.mark.parametrize(
    ("faults", "args", "code", "said"),
    [pytest.param(*case[1:], id=case[0]) for case in FAILURES],
)
def test_a_failed_reset_leaves_the_index_as_it_was(
    cli: Cli,
    work: Path,
    built: dict[str, Any],
    index_db: str,
    faults: Faults | None,
    args: tuple[str, ...],
    code: int,
    said: str,
) -> None:
    with serve(faults) if faults is not None else nullcontext() as server:
        url = server.url if server is not None else f"http://127.0.0.1:{free_port()}"
        # Another model too: the old manifest would refuse it without --reset.
        result = index(cli, index_db, url, "--reset", *args, model="other")
    assert result.exit_code == code, result.stderr
    assert said in result.stderr
    if code == 2:
        assert "hint:" in result.stderr
    else:
        assert result.summary()["failed"] == 6 and result.summary()["indexed"] == 0
    assert snapshot(index_db) == built
    still_searches(cli, index_db)


def test_a_reset_that_gets_vectors_replaces_everything(
    cli: Cli, work: Path, built: dict[str, Any], index_db: str
) -> None:
    write(work, {"docs/bad.md": "# Bad\n\nThis one holds POISONWORD.\n"})
    # Slow answers: the skipped and the failed file are written before the first vectors,
    # and held back until the reset commits with them.
    with serve(Faults(dims=DIMS, latency=0.3, poison="POISONWORD")) as server:
        result = index(cli, index_db, server.url, "--reset", "--batch-size", "2", model="m2")
        url = server.url
    assert result.exit_code == 1, result.stderr
    summary = result.summary()
    assert (summary["indexed"], summary["skipped"], summary["failed"]) == (6, 1, 1)
    statuses = dict(
        index_rows(index_db, "SELECT path, status FROM files WHERE status != 'staging'")
    )
    cached = [bytes(key) for (key,) in index_rows(index_db, "SELECT key FROM embeddings")]
    inputs = index_rows(index_db, "SELECT coalesce(input, text) FROM chunks")
    manifest = dict(index_rows(index_db, "SELECT key, value FROM manifest"))
    runs = index_rows(index_db, "SELECT id FROM runs")
    names = sorted(Path(p).name for p in statuses)
    assert names == sorted(["bad.md", "picture.bin", *(f"n{i}.md" for i in range(6))])
    assert sorted(statuses.values()).count("skipped") == 1
    # Only the new model's vectors: the old cache went with the reset.
    keys = {embedding_key("openai", "m2", DIMS, text) for (text,) in inputs}
    assert set(cached) == keys and len(cached) == 6
    assert all(vector.shape == (DIMS,) for _, _, vector in stored_vectors_in(index_db))
    assert manifest["model"] == "m2" and manifest["base_url"] == f"{url}/v1"
    assert [r[0] for r in runs] == [summary["run_id"]]  # the history went with it


def test_the_stored_vectors_after_a_reset_are_the_new_servers(
    cli: Cli, work: Path, built: dict[str, Any], index_db: str
) -> None:
    with serve(Faults(dims=DIMS, scale=3.0)) as server:
        result = index(cli, index_db, server.url, "--reset", "--no-normalize", model="m")
    assert result.exit_code == 0, result.stderr
    rows = stored_vectors_in(index_db)
    assert len(rows) == 6
    for _, text, vector in rows:  # the same keys as before: replaced, not kept from the old cache
        assert np.allclose(vector, 3 * expected_vector(text, DIMS), atol=1e-5)


def test_a_reset_to_the_offline_embedder(
    cli: Cli, work: Path, built: dict[str, Any], index_db: str
) -> None:
    result = cli("index", "docs", "--db", index_db, "--json", "--provider", "hash", "--reset")
    assert result.exit_code == 0, result.stderr
    assert result.summary()["indexed"] == 6
    after = snapshot(index_db)
    assert dict(after["manifest"])["provider"] == "hash"
    assert "base_url" not in dict(after["manifest"])
    assert len(after["embeddings"]) == 6 and after["embeddings"] != built["embeddings"]


def test_a_reset_with_nothing_to_embed_completes(
    cli: Cli, work: Path, built: dict[str, Any], index_db: str
) -> None:
    """Nothing was at stake: the run completed without a failure, so the reset holds."""
    write(work, {"pictures/a.bin": b"\x00\x01" * 100})
    result = cli("index", "pictures", "--db", index_db, "--json", "--provider", "hash", "--reset")
    assert result.exit_code == 0, result.stderr
    after = snapshot(index_db)
    assert [Path(row[1]).name for row in after["files"]] == ["a.bin"]
    assert after["chunks"] == after["embeddings"] == after["manifest"] == []


@contextmanager
def stalled() -> Iterator[EmbeddingServer]:
    with serve(Faults(dims=DIMS, hang_first=10**6, hang_seconds=60)) as server:
        yield server


@pytest.mark.parametrize("dims", [(), ("--dimensions", "64")], ids=["probe", "dims"])
def test_ctrl_c_before_the_first_commit_leaves_the_index(
    work: Path, built: dict[str, Any], index_db: str, dims: tuple[str, ...]
) -> None:
    with stalled() as server:
        args = [
            *RAGIDX, "index", "docs", "--db", index_db, "--provider", "openai", "--reset",
            "--base-url", f"{server.url}/v1", "--model", "other", "--timeout", "1", *dims,
        ]  # fmt: skip
        proc = start(args, work)
        deadline = time.monotonic() + 60
        while server.counters.requests < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.counters.requests >= 1
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc, timeout=60)
    assert proc.returncode == 130, err
    assert snapshot(index_db) == built
