"""Answers that look valid but are not (issue 14, part 4), through the CLI against the real
test server: vectors of zeros (or too small to have a direction), redirects, and a run that
sends nothing, which must not record its server."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Cli, Result, stored_vectors, write

from ragidx.testing.server import Faults, expected_vector, serve

DIMS = 64
DOCS = {f"docs/n{i}.md": f"# Note {i}\n\nA paragraph about topic {i}.\n" for i in range(5)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def index(cli: Cli, url: str, *args: str) -> Result:
    return cli(
        "index", "docs", "--db", "idx.db", "--json", "--provider", "openai",
        "--base-url", f"{url}/v1", "--model", "m", *args,
    )  # fmt: skip


def vectors(db: Path = Path("idx.db")) -> list[tuple[str, np.ndarray[Any, Any]]]:
    return [(text, vector) for _, text, vector in stored_vectors(db)]


def base_url(db: Path = Path("idx.db")) -> str | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT value FROM manifest WHERE key = 'base_url'").fetchone()
    finally:
        conn.close()
    return row[0] if row else None


# -- vectors with no direction ---------------------------------------------------------------


@pytest.mark.parametrize("dims", [(), ("--dimensions", "64")], ids=["probe", "dims"])
def test_an_answer_with_a_zero_vector_is_retried(cli: Cli, work: Path, dims: tuple[str]) -> None:
    write(work, DOCS)
    with serve(Faults(dims=DIMS, zero_vectors=2)) as server:
        result = index(cli, server.url, *dims)
    assert result.exit_code == 0, result.stderr
    assert result.summary()["indexed"] == 5 and result.summary()["retries"] >= 2
    stored = vectors()
    assert len(stored) == 5
    for text, vector in stored:
        assert np.allclose(vector, expected_vector(text, DIMS), atol=1e-6)


@pytest.mark.parametrize(
    ("faults", "words"),
    [
        (Faults(dims=DIMS, zero_vectors=10**6), "is all zeros"),
        (Faults(dims=DIMS, scale=1e-40), "too small to normalise"),  # float32 denormals
    ],
    ids=["zeros", "denormal"],
)
def test_vectors_with_no_direction_fail_their_files(
    cli: Cli, work: Path, faults: Faults, words: str
) -> None:
    write(work, DOCS)
    with serve(faults) as server:
        result = index(cli, server.url, "--dimensions", "64", "--max-retries", "1")
    assert result.exit_code == 1, result.stderr
    reasons = {r["reason"] for r in result.files().values()}
    assert len(reasons) == 1
    (reason,) = reasons
    assert reason.startswith("invalid_response:") and words in reason
    assert vectors() == []  # nothing stored as [0, 0, ...]


def test_doctor_reports_a_zero_vector(cli: Cli, work: Path) -> None:
    with serve(Faults(dims=DIMS, zero_vectors=1)) as server:
        result = cli(
            "doctor", "--provider", "openai", "--base-url", f"{server.url}/v1", "--model", "m"
        )
    assert result.exit_code == 1, result.stdout
    assert "fail answer: vector 1 of 1 is all zeros" in result.stdout
    assert "hint: the server's model gives unusable vectors" in result.stdout


def test_small_vectors_are_stored_at_unit_length(cli: Cli, work: Path) -> None:
    # Squares of 1e-25 underflow in float32: the length must be taken without squaring them.
    write(work, DOCS)
    with serve(Faults(dims=DIMS, scale=1e-25)) as server:
        result = index(cli, server.url)
    assert result.exit_code == 0, result.stderr
    for text, vector in vectors():
        assert np.allclose(vector, expected_vector(text, DIMS), atol=1e-6)


def test_the_offline_embedder_gives_featureless_text_a_direction(cli: Cli, work: Path) -> None:
    write(
        work,
        {
            "docs/stop.txt": "To be, or to be: that is it.\n",  # stop words only
            "docs/marks.txt": "=> -> <= :: ==\n",  # no word at all
            "docs/other.txt": "Gardening with tomatoes and basil.\n",
        },
    )
    result = cli("index", "docs", "--db", "idx.db", "--json", "--provider", "hash")
    assert result.exit_code == 0, result.stderr
    stored = vectors()
    assert len(stored) == 3
    for _, vector in stored:
        assert abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    assert len({vector.tobytes() for _, vector in stored}) == 3
    # Such a query is still near nothing by its vector; the full-text side finds the words.
    nothing = cli("search", "to be or", "--db", "idx.db", "--mode", "vector")
    assert (nothing.exit_code, nothing.stdout) == (0, "no matches\n")
    hits = cli("search", "to be or", "--db", "idx.db", "--json", "-k", "1")
    assert hits.exit_code == 0, hits.stderr
    assert hits.json_lines()[0]["path"].endswith("stop.txt")


# -- redirects ---------------------------------------------------------------------------------


def test_a_redirect_stops_the_run_and_is_never_followed(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    with serve(Faults(dims=DIMS)) as target:
        where = f"http://user:pw@127.0.0.1:{target.server_address[1]}/v1/embeddings"
        moved = Faults(dims=DIMS, redirect=f"{where}?sig=SIGNED#frag")
        with serve(moved) as server:
            result = index(cli, server.url)
            asked = server.counters.requests
        followed = target.counters.requests
    assert result.exit_code == 2, result.stderr
    shown = f"http://127.0.0.1:{target.server_address[1]}/v1/embeddings"
    assert f"error: HTTP 307: the server redirects to {shown}\n" in result.stderr
    assert "hint:" in result.stderr and "--base-url" in result.stderr
    for secret in ("pw", "user", "SIGNED", "frag", "malformed"):
        assert secret not in result.stderr
    assert (asked, followed) == (1, 0)  # not retried, not followed


def test_a_relative_302_is_shown_in_full(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    with serve(Faults(dims=DIMS, redirect="/elsewhere/v1/embeddings", redirect_status=302)) as s:
        result = index(cli, s.url, "--dimensions", "64")
    assert result.exit_code == 2, result.stderr
    assert f"HTTP 302: the server redirects to {s.url}/elsewhere/v1/embeddings" in result.stderr


def test_doctor_reports_a_redirect(cli: Cli, work: Path) -> None:
    with serve(Faults(dims=DIMS, redirect="http://127.0.0.1:9/v1/embeddings")) as server:
        result = cli(
            "doctor", "--provider", "openai", "--base-url", f"{server.url}/v1", "--model", "m"
        )
    assert result.exit_code == 1, result.stdout
    assert "fail redirect: HTTP 307: the server redirects to http://127.0.0.1:9/v1/embeddings" in (
        result.stdout
    )
    assert "hint:" in result.stdout and "reachable" not in result.stdout


def test_search_reports_a_redirect(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    with serve(Faults(dims=DIMS)) as good:
        assert index(cli, good.url).exit_code == 0
    with serve(Faults(dims=DIMS, redirect="http://127.0.0.1:9/v1/embeddings")) as server:
        result = cli("search", "topic", "--db", "idx.db", "--base-url", f"{server.url}/v1")
    assert result.exit_code == 2
    assert "redirects to http://127.0.0.1:9/v1/embeddings" in result.stderr
    assert "hint:" in result.stderr


# -- the server a run records ------------------------------------------------------------------


def test_the_index_records_a_server_only_once_it_has_answered(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    nowhere = f"http://127.0.0.1:{free_port()}"
    with serve(Faults(dims=DIMS)) as first, serve(Faults(dims=DIMS, fail_first=10**6)) as down:
        assert index(cli, first.url).exit_code == 0
        # Nothing to send: the run succeeds and the server it names is not recorded.
        unchanged = index(cli, nowhere)
        assert unchanged.exit_code == 0 and unchanged.summary()["unchanged"] == 5
        assert base_url() == f"{first.url}/v1"
        found = cli("search", "topic", "--db", "idx.db", "--json")
        assert found.exit_code == 0, found.stderr
        assert found.json_lines()
        # A changed file and a server that fails every request: still not recorded.
        write(work, {"docs/n0.md": "# Note 0\n\nChanged text about topic 0.\n"})
        failed = index(cli, down.url, "--max-retries", "1")
        assert failed.exit_code == 1 and failed.summary()["failed"] == 1
        assert base_url() == f"{first.url}/v1"
    with serve(Faults(dims=DIMS)) as second:
        answered = index(cli, second.url)
        assert answered.exit_code == 0 and answered.summary()["indexed"] == 1
        assert base_url() == f"{second.url}/v1"


def test_connection_errors_name_the_server(cli: Cli, work: Path) -> None:
    write(work, DOCS)
    with serve(Faults(dims=DIMS)) as server:
        assert index(cli, server.url).exit_code == 0
    url = f"http://127.0.0.1:{free_port()}/v1"
    # The index's own server is gone now: search says which it asked, and what to do.
    for args in [(), ("--base-url", url)]:
        result = cli("search", "topic", "--db", "idx.db", *args)
        assert result.exit_code == 2
        assert "error: cannot connect to http://127.0.0.1:" in result.stderr
        assert "/v1/embeddings" in result.stderr and "ConnectError" not in result.stderr
        assert "hint:" in result.stderr and "--mode text" in result.stderr
    text = cli("search", "topic", "--db", "idx.db", "--mode", "text", "--json")
    assert text.exit_code == 0 and text.json_lines()
    doctor = cli("doctor", "--provider", "openai", "--base-url", url, "--model", "m")
    assert doctor.exit_code == 1
    assert f"fail reachable: cannot connect to {url}/embeddings" in doctor.stdout
    assert f"hint: is the server running and reachable at {url}?" in doctor.stdout
