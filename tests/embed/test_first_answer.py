"""One bad answer, first or last, never poisons a run (issue 13, part 1).

Against the real test server, a fault on one chosen answer (`Faults.at`): the run still
indexes every file with exactly the server's vector for each chunk, and exits 0. Without
`--dimensions` the first answers are the ones ragidx learns the model's width from: a width
is bound only when two answers agree, before any batch is sent.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Cli, Result, vectors_by_file, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ragidx
from ragidx.config import IndexConfig
from ragidx.embed import PROVIDERS, OpenAIEmbedder
from ragidx.embed.http import HttpSettings
from ragidx.testing.server import ANSWER_FAULTS, EmbeddingServer, Faults, expected_vector, serve

DIMS = 64
FILES = {f"docs/f{i:02d}.md": f"# Note {i}\n\nA paragraph about topic {i}.\n" for i in range(12)}
# One file of many chunks: they reach the batcher together, so a run's batches (and so its
# requests) do not depend on timing, and the last request can be named in advance.
LONG = "\n\n".join(
    f"## Part {i}\n\n" + f"Words about part {i} and its topic. " * 6 for i in range(9)
)
PROBES = 2  # the answers that agree on the width, before any batch


def index(
    cli: Cli, server: EmbeddingServer, *args: str, provider: str = "openai", db: str = "idx.db"
) -> Result:
    base = server.url + ("/v1" if provider == "openai" else "")
    return cli(
        "index", "docs", "--db", db, "--json", "--provider", provider,
        "--base-url", base, "--model", "m", *args,
    )  # fmt: skip


def stored(db: Path) -> dict[str, list[tuple[str, Any]]]:
    return vectors_by_file(db)


def wrong_vectors(db: Path) -> list[str]:
    """The chunks whose stored vector is not exactly the server's for their input."""
    return [
        text
        for chunks in stored(db).values()
        for text, vector in chunks
        if vector.shape != (DIMS,)
        or not np.allclose(vector, expected_vector(text, DIMS), atol=1e-6)
    ]


def manifest_dims(db: Path = Path("idx.db")) -> str | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT value FROM manifest WHERE key = 'dims'").fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def assert_all_indexed(result: Result, files: int) -> None:
    assert result.exit_code == 0, result.stderr + result.stdout
    assert result.summary()["indexed"] == files and result.summary()["failed"] == 0
    assert len(stored(Path("idx.db"))) == files
    assert wrong_vectors(Path("idx.db")) == []
    assert manifest_dims() == str(DIMS)


@pytest.mark.parametrize("fault", ANSWER_FAULTS)
def test_a_fault_on_the_first_answer(cli: Cli, work: Path, fault: str) -> None:
    write(work, FILES)
    with serve(Faults(dims=DIMS, at={1: fault})) as server:
        result = index(cli, server)
    assert_all_indexed(result, 12)
    # An answer of one wrong width is a vote, outvoted by the next two; a shuffle is legal;
    # any other fault makes the answer invalid: retried once.
    assert result.summary()["retries"] == (fault not in ("wrong_dims", "shuffled"))


@pytest.mark.parametrize("provider", ["ollama", "tei"])
def test_a_ragged_first_answer_from_ollama_and_tei(cli: Cli, work: Path, provider: str) -> None:
    write(work, FILES)
    with serve(Faults(dims=DIMS, at={1: "ragged"})) as server:
        result = index(cli, server, provider=provider)
    assert_all_indexed(result, 12)


def last_request(cli: Cli, server: EmbeddingServer, *args: str) -> int:
    """The number the last request of a clean run gets: the probes, then one per batch (a dry
    run counts the batches without sending anything)."""
    dry = index(cli, server, "--dry-run", *args, db="dry.db")
    assert dry.exit_code == 0, dry.stderr
    return PROBES + dry.summary()["requests"]


@pytest.mark.parametrize("fault", ANSWER_FAULTS)
def test_a_fault_on_the_last_answer(cli: Cli, work: Path, fault: str) -> None:
    write(work, {"docs/long.md": LONG})
    args = ("--batch-size", "2", "--chunk-tokens", "64")
    with serve(Faults(dims=DIMS)) as server:
        last = last_request(cli, server, *args)
        server.faults.at = {last: fault}
        result = index(cli, server, *args)
        requests = server.counters.requests
    assert last >= PROBES + 4  # several batches, each of two inputs
    assert_all_indexed(result, 1)
    # The fault did hit the last answer: one retry came after it (a shuffle is legal).
    assert requests == last + (fault != "shuffled")


def test_two_answers_that_disagree_ask_a_third(cli: Cli, work: Path) -> None:
    write(work, FILES)
    with serve(Faults(dims=DIMS, at={1: "wrong_dims", 3: "nan"})) as server:
        result = index(cli, server)
    assert_all_indexed(result, 12)
    assert result.summary()["retries"] == 1  # the NaN; the 65 was a vote, outvoted


def test_the_index_knows_its_width_and_asks_no_more(cli: Cli, work: Path) -> None:
    write(work, FILES)
    with serve(Faults(dims=DIMS)) as server:
        assert_all_indexed(index(cli, server), 12)
        write(work, {"docs/f00.md": "# Note 0\n\nNow about something else.\n"})
        # The first answer of this run is wrong: the index's width, not the answer, decides.
        server.faults.at = {server.counters.requests + 1: "wrong_dims"}
        before = server.counters.requests
        again = index(cli, server)
        sent = server.counters.requests - before
    assert again.exit_code == 0, again.stderr
    assert again.summary()["indexed"] == 1 and sent == 2  # the one batch, retried once
    assert wrong_vectors(Path("idx.db")) == []


class Widths:
    """An embedder whose every answer has another width: no two ever agree."""

    provider, model, dims, max_inputs, max_tokens = "widths", "w", 0, 8, 1000

    def __init__(self) -> None:
        self.asked = 0

    async def embed(self, texts: Sequence[str]) -> Any:
        self.asked += 1
        return np.ones((len(texts), 8 + self.asked), np.float32)

    async def aclose(self) -> None:
        pass


def test_a_server_that_never_agrees_with_itself_is_given_up_on(
    cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(work, FILES)
    embedder = Widths()
    monkeypatch.setitem(PROVIDERS, "widths", lambda model, dims, options: embedder)
    result = cli("index", "docs", "--db", "idx.db", "--provider", "widths")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert (
        lines[0]
        == "error: the server's answers disagree on the width of its vectors: 9, 10, 11, 12 numbers"
    )
    assert lines[1].startswith("hint: check the server")
    assert embedder.asked == 4  # then no batch is sent
    assert not Path("idx.db").exists()  # a run that stored nothing leaves no index behind


# -- property: any few faults, anywhere, with retries to spare ---------------------------------

SMALL = {f"docs/s{i}.md": f"# Small {i}\n\nShort note number {i}.\n" for i in range(5)}
# At most one answer of a wrong width: two that agree with each other are, to any client,
# the model's width (the limit of learning it from answers at all).
fault_plans = st.dictionaries(
    st.integers(1, 12), st.sampled_from(ANSWER_FAULTS), max_size=6
).filter(lambda plan: list(plan.values()).count("wrong_dims") <= 1)


@pytest.fixture(scope="module")
def shared() -> Iterator[EmbeddingServer]:
    """One server for every example (a server takes half a second to stop): each example's
    plan is moved past the requests the server has answered so far."""
    with serve(Faults(dims=DIMS)) as server:
        yield server


async def _no_wait(seconds: float) -> None:
    pass


async def _run(server: EmbeddingServer, root: Path, dims: int | None) -> ragidx.RunSummary:
    settings_ = HttpSettings(
        base_url=server.url + "/v1", model="m", dims=dims, max_retries=8, max_inputs=2
    )
    embedder = OpenAIEmbedder(settings_, sleep=_no_wait, jitter=lambda: 0.0)
    try:
        config = IndexConfig(db_path=root / "idx.db", batch_inputs=2)
        return await ragidx.run_index([root / "docs"], embedder, config)
    finally:
        await embedder.aclose()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=fault_plans, given_dims=st.booleans())
def test_any_few_faults_anywhere_leave_every_file_right(
    shared: EmbeddingServer, plan: dict[int, str], given_dims: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root, SMALL)
        before = shared.counters.requests
        shared.faults.at = {before + n: fault for n, fault in plan.items()}
        summary = asyncio.run(_run(shared, root, DIMS if given_dims else None))
        requests = shared.counters.requests - before
        assert summary.counts[ragidx.FileStatus.FAILED] == 0
        assert summary.counts[ragidx.FileStatus.INDEXED] == len(SMALL)
        assert len(stored(root / "idx.db")) == len(SMALL)
        assert wrong_vectors(root / "idx.db") == []
        assert manifest_dims(root / "idx.db") == str(DIMS)
        # Probes and batches of two, plus at most one request for each fault.
        assert requests <= (0 if given_dims else PROBES) + len(SMALL) + len(plan)
