"""`ragidx index` against the real fault-injecting embedding server on 127.0.0.1.

Every run checks what was stored: each file is indexed with exactly the server's vector for
each chunk's input, or failed with the right reason, and the exit code matches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    DIMS,
    FILES,
    LONG,
    Cli,
    assert_exact,
    index_with,
    stored,
    write,
)

from ragidx.testing.server import EmbeddingServer, Faults, serve


@pytest.fixture
def tree(work: Path) -> Path:
    write(work, FILES)
    return work / "docs"


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    with serve(Faults(dims=DIMS)) as s:
        yield s


def test_clean_run_stores_the_servers_vectors(
    cli: Cli, tree: Path, server: EmbeddingServer
) -> None:
    result = index_with(cli, server)
    assert result.exit_code == 0, result.stderr
    assert result.summary()["indexed"] == 12
    assert_exact(12)
    assert server.counters.inputs == 12  # batched across files, nothing sent twice


@pytest.mark.parametrize("provider", ["ollama", "tei"])
def test_ollama_and_tei(cli: Cli, tree: Path, server: EmbeddingServer, provider: str) -> None:
    result = index_with(cli, server, provider=provider)
    assert result.exit_code == 0, result.stderr
    assert_exact(12)


@pytest.mark.parametrize(
    "faults",
    [
        Faults(dims=DIMS, fail_first=3, fail_status=500, retry_after=0.01),
        Faults(dims=DIMS, fail_first=3, fail_status=503, retry_after=0.01),
        Faults(dims=DIMS, fail_first=2, fail_status=429, retry_after=0.01),
        Faults(dims=DIMS, reset_first=2),
        Faults(dims=DIMS, malformed_first=1),
        Faults(dims=DIMS, short_first=1),
        Faults(dims=DIMS, nan_first=1),
        Faults(dims=DIMS, wrong_dims_first=1),
        Faults(dims=DIMS, shuffle=True),
    ],
    ids=["500", "503", "429", "reset", "malformed", "too-few", "nan", "wrong-dims", "shuffled"],
)
def test_transient_faults_are_survived(cli: Cli, tree: Path, faults: Faults) -> None:
    with serve(faults) as server:
        result = index_with(cli, server, "--batch-size", "4")
    assert result.exit_code == 0, result.stderr
    assert result.summary()["indexed"] == 12
    assert_exact(12)


def test_a_hung_request_times_out_and_is_retried(cli: Cli, tree: Path) -> None:
    with serve(Faults(dims=DIMS, hang_first=1, hang_seconds=5)) as server:
        result = index_with(cli, server, "--timeout", "0.5")
    assert result.exit_code == 0, result.stderr
    assert_exact(12)


def test_persistent_server_errors_fail_the_files_with_a_class(cli: Cli, tree: Path) -> None:
    with serve(Faults(dims=DIMS, fail_first=10_000, fail_status=500, retry_after=0.01)) as server:
        result = index_with(cli, server, "--max-retries", "2")
    assert result.exit_code == 1
    reasons = {r["reason"] for r in result.files().values()}
    assert reasons == {"server_error: HTTP 500: injected 500"}
    assert server.counters.statuses[500] == 3  # one batch, three attempts
    assert stored() == {}


def test_one_poison_input_fails_only_its_file(cli: Cli, tree: Path) -> None:
    write(tree.parent, {"docs/f05.md": "# Note 5\n\nthis one carries POISON\n"})
    with serve(Faults(dims=DIMS, poison="POISON")) as server:
        result = index_with(cli, server, "--batch-size", "12")
    assert result.exit_code == 1
    statuses = {p: r["status"] for p, r in result.files().items()}
    assert statuses.pop("docs/f05.md") == "failed"
    assert set(statuses.values()) == {"indexed"}
    assert result.files()["docs/f05.md"]["reason"].startswith("rejected_input: HTTP 400")
    assert_exact(11)


def test_batches_too_large_for_the_server_are_split(cli: Cli, tree: Path) -> None:
    with serve(Faults(dims=DIMS, max_inputs=3)) as server:
        result = index_with(cli, server, "--batch-size", "12")
    assert result.exit_code == 0, result.stderr
    assert_exact(12)
    assert server.counters.statuses[422] >= 1


def test_an_over_long_chunk_fails_as_too_long(cli: Cli, tree: Path) -> None:
    write(tree.parent, {"docs/f07.md": LONG})
    with serve(Faults(dims=DIMS, max_chars=200)) as server:
        result = index_with(cli, server, "--on-long-chunk", "fail")
    assert result.exit_code == 1
    assert result.files()["docs/f07.md"]["reason"].startswith("too_long: HTTP 400")
    assert_exact(11)


def test_an_over_long_chunk_is_split_by_default(cli: Cli, tree: Path) -> None:
    write(tree.parent, {"docs/f07.md": LONG})
    with serve(Faults(dims=DIMS, max_chars=200)) as server:
        result = index_with(cli, server)
    assert result.exit_code == 0, result.stderr
    assert result.summary()["requests"] == server.counters.requests > 1  # refits counted
    record = result.files()["docs/f07.md"]
    assert record["status"] == "indexed" and record["chunks"] > 1
    assert record["reason"] == "1 chunk too long for the model, split to fit"
    assert_exact(12)
    rows = cli("export", "--db", "idx.db").json_lines()
    pieces = [r for r in rows if r["path"] == "docs/f07.md"]
    assert [r["ordinal"] for r in pieces] == list(range(len(pieces)))
    source = LONG
    for r in pieces:
        assert source[r["char_start"] : r["char_end"]] == r["text"]
    assert " ".join(r["text"] for r in pieces).split() == LONG.split()


def test_an_over_long_chunk_can_be_truncated(cli: Cli, tree: Path) -> None:
    write(tree.parent, {"docs/f07.md": LONG})
    with serve(Faults(dims=DIMS, max_chars=200)) as server:
        result = index_with(cli, server, "--on-long-chunk", "truncate")
    assert result.exit_code == 0, result.stderr
    assert (
        result.files()["docs/f07.md"]["reason"]
        == "1 chunk too long for the model, truncated to fit"
    )
    assert_exact(12)  # each vector is the server's for the input that was sent
    (row,) = [
        r
        for r in cli("export", "--db", "idx.db", "--vectors").json_lines()
        if r["path"] == "docs/f07.md"
    ]
    assert len(row["input"]) <= 200 and row["text"].startswith(row["input"].split("\n\n", 1)[1])


def test_api_key_comes_from_the_environment_and_never_shows(
    cli: Cli, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-secret-4242424242"
    with serve(Faults(dims=DIMS, api_key=key)) as server:
        refused = index_with(cli, server)
        assert refused.exit_code == 2
        assert "HTTP 401" in refused.stderr and "hint:" in refused.stderr
        monkeypatch.setenv("RAGIDX_API_KEY", key)
        accepted = index_with(cli, server, "--verbose")
        search = cli("search", "topic", "--db", "idx.db", "--base-url", server.url + "/v1")
    assert accepted.exit_code == 0, accepted.stderr
    assert search.exit_code == 0 and "docs/" in search.stdout
    assert_exact(12)
    for text in (refused.stdout, refused.stderr, accepted.stdout, accepted.stderr, search.stdout):
        assert key not in text
    assert key.encode() not in Path("idx.db").read_bytes()


def test_exhausted_quota_stops_the_run(cli: Cli, tree: Path) -> None:
    with serve(Faults(dims=DIMS, insufficient_quota=True)) as server:
        result = index_with(cli, server)
    assert result.exit_code == 2
    assert "insufficient_quota" in result.stderr
    assert server.counters.statuses[429] == 1  # not retried


def test_dims_are_learned_from_the_server(cli: Cli, tree: Path, server: EmbeddingServer) -> None:
    base = ["index", "docs", "--db", "idx.db", "--json", "--base-url", server.url + "/v1"]
    result = cli(*base)
    assert result.exit_code == 0, result.stderr
    conn = sqlite3.connect("idx.db")
    manifest = dict(conn.execute("SELECT key, value FROM manifest"))
    conn.close()
    assert manifest["provider"] == "openai" and manifest["dims"] == str(DIMS)
    assert manifest["base_url"] == server.url + "/v1"
    assert cli(*base).summary()["unchanged"] == 12


@pytest.mark.parametrize("paced", [False, True])
def test_a_server_budget(cli: Cli, work: Path, paced: bool) -> None:
    write(work, {f"docs/n{i:02d}.md": f"note {i}\n" for i in range(20)})
    with serve(Faults(dims=DIMS, rpm=600)) as server:
        extra = ["--rpm", "600"] if paced else []
        result = index_with(cli, server, "--batch-size", "1", *extra)
    assert result.exit_code == 0, result.stderr
    summary = result.summary()
    assert summary["indexed"] == 20
    # Paced by --rpm, or by the x-ratelimit headers alone: inside the budget, nearly no 429s.
    assert summary["rate_limited"] == server.counters.statuses.get(429, 0) <= 2
    assert summary["seconds"] >= 0.9  # 20 requests at 10 a second, 10 banked at most


def test_doctor_reports_dims_latency_and_limits(cli: Cli, work: Path) -> None:
    with serve(Faults(dims=DIMS, rpm=600)) as server:
        result = cli("doctor", "--base-url", server.url + "/v1", "--json")
    assert result.exit_code == 0, result.stderr
    checks = {c["name"]: c for c in result.json_lines()}
    assert all(c["ok"] for c in checks.values())
    assert checks["dims"]["detail"] == str(DIMS)
    assert checks["reachable"]["detail"].startswith("HTTP 200 in ")
    assert "remaining-requests=" in checks["rate limits"]["detail"]


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--base-url", "{url}/v1"], "set RAGIDX_API_KEY"),
        (["--provider", "tei", "--base-url", "{url}/nope"], "wrong base URL"),
        (["--base-url", "http://127.0.0.1:9/v1", "--timeout", "2"], "is the server running"),
    ],
    ids=["no-key", "wrong-path", "refused"],
)
def test_doctor_hints(cli: Cli, work: Path, args: list[str], hint: str) -> None:
    with serve(Faults(dims=DIMS, api_key="k")) as server:
        result = cli("doctor", *(a.format(url=server.url) for a in args))
    assert result.exit_code == 1
    assert "fail" in result.stdout and f"hint: {hint}" in " ".join(result.stdout.split())


@pytest.mark.slow
@pytest.mark.parametrize("paced", [False, True])
def test_a_server_token_budget(cli: Cli, work: Path, paced: bool) -> None:
    write(work, {f"docs/n{i:02d}.md": f"note {i} " + "word " * 30 + "\n" for i in range(16)})
    with serve(Faults(dims=DIMS, tpm=6000)) as server:  # 100 tokens a second
        extra = ["--tpm", "6000"] if paced else []
        result = index_with(cli, server, "--batch-size", "2", *extra)
        tokens = server.counters.tokens
    assert result.exit_code == 0, result.stderr
    summary = result.summary()
    assert summary["indexed"] == 16
    # Told the budget, ragidx keeps inside it; left to the headers, the first requests in
    # flight can overshoot before any answer says how much is left: a handful of 429s.
    assert summary["rate_limited"] <= (2 if paced else 6)
    assert tokens / summary["seconds"] <= 100 * 1.5  # about the budget, a second banked


def test_one_bad_first_answer_does_not_bind_the_index(cli: Cli, tree: Path) -> None:
    base = ["index", "docs", "--db", "idx.db", "--json", "--max-retries", "1"]
    with serve(Faults(dims=DIMS, wrong_dims_first=1)) as server:
        result = cli(*base, "--base-url", server.url + "/v1")
    # The first answer said 65 dims, the next two 64: two agreeing answers bind 64.
    assert result.exit_code == 0, result.stderr
    conn = sqlite3.connect("idx.db")
    assert conn.execute("SELECT value FROM manifest WHERE key = 'dims'").fetchone() == ("64",)
    conn.close()
    assert_exact(12)


def test_doctor_copes_with_a_server_that_refuses_base64(cli: Cli, work: Path) -> None:
    with serve(Faults(dims=DIMS, refuse_base64=True)) as server:
        result = cli("doctor", "--base-url", server.url + "/v1", "--json")
    assert result.exit_code == 0, result.stdout
    assert {c["name"] for c in result.json_lines()} >= {"encoding", "dims"}


def test_dimensions_are_refused_for_tei_and_ollama(cli: Cli, tree: Path) -> None:
    result = cli("index", "docs", "--db", "idx.db", "--provider", "tei", "--dimensions", "8")
    assert result.exit_code == 2
    assert "--dimensions applies to the openai provider" in result.stderr
