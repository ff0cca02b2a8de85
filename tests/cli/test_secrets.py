"""No secret is ever shown or stored: the API key and a base URL's user and password, fed
back by a server that repeats the request's headers in every error message, through every
error path; then every output stream, JSON event and database file (WAL and lock included)
is searched for them, whole and in pieces."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import Cli, Result, db_rows, write

from ragidx.config import IndexConfig
from ragidx.embed import EmbedOptions, create_embedder
from ragidx.embed.http import HttpSettings
from ragidx.events import FileDone
from ragidx.models import FileStatus
from ragidx.pipeline.run import run_index
from ragidx.redact import MASK, Redactor, url_credentials, without_credentials
from ragidx.store import lock_path
from ragidx.testing.server import EmbeddingServer, Faults, serve

DIMS = 64
PLAIN_KEY = "sk-test-SECRET123"
REGEX_KEY = 'sk.*+?^$()[]{}|\\"x9Q-(a+)+$'  # every character a pattern could trip on
USER, PASSWORD = "alice", "hunter2-pw-XYZ"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
DOCS = {
    "docs/a.md": "# Alpha\n\nA note about the topic.\n",
    "docs/b.md": "# Bravo\n\nPOISON in this one.\n",
}


def secret_pieces(*secrets: str) -> set[str]:
    """Every 8-character piece of each secret, as is and JSON-escaped (a whole secret when
    shorter): none may appear anywhere."""
    pieces: set[str] = set()
    for secret in secrets:
        for form in (secret, json.dumps(secret)[1:-1], secret.rstrip("=")):
            pieces |= {form[i : i + 8] for i in range(max(len(form) - 7, 1))}
    return pieces


def leaks(text: str | bytes, pieces: set[str]) -> list[str]:
    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
    context = [f"{USER}:", f"{USER}@"]  # the user name shows nowhere as a credential
    return sorted(p for p in [*pieces, *context] if p in raw)


def with_login(server: EmbeddingServer) -> str:
    return server.url.replace("http://", f"http://{USER}:{PASSWORD}@") + "/v1"


def index(cli: Cli, url: str, *args: str) -> Result:
    return cli(
        "index", "docs", "--db", "idx.db", "--base-url", url, "--dimensions", str(DIMS),
        "--json", "-v", *args,
    )  # fmt: skip


def database_files(work: Path) -> dict[str, bytes]:
    paths = [work / "idx.db", work / "idx.db-wal", lock_path(work / "idx.db")]
    return {p.name: p.read_bytes() for p in paths if p.exists()}


# -- the redaction step ----------------------------------------------------------------------


@pytest.mark.parametrize("key", [PLAIN_KEY, REGEX_KEY])
def test_a_key_is_masked_whole_in_pieces_and_escaped(key: str) -> None:
    redact = Redactor.of(keys=[key], environ={})
    for text in (
        f"Incorrect API key provided: {key}",
        f"header {json.dumps(key)} repeated",
        f"cut short: ...{key[3:11]}",
        f"{key[:9]}...{key[-9:]}",
    ):
        masked = redact(text)
        assert MASK in masked and not leaks(masked, secret_pieces(key)), masked
    assert redact("nothing secret here") == "nothing secret here"


def test_credentials_of_any_kind_are_masked() -> None:
    redact = Redactor.of(urls=[f"http://{USER}:{PASSWORD}@host/v1"], environ={})
    assert redact(f"Authorization: Basic {BASIC}") == "Authorization: Basic ***"
    assert redact("Authorization: Bearer someone-elses-token") == "Authorization: Bearer ***"
    assert redact("see http://bob:pw@other:8080/v1/x") == "see http://***@other:8080/v1/x"
    assert redact(f"password {PASSWORD} refused") == "password *** refused"
    assert redact(f"{USER}:{PASSWORD}") == "***"
    # Words after the scheme names are words; a user name beside a password is a name.
    for text in ("Basic authentication required", "Bearer token missing", f"user {USER}"):
        assert redact(text) == text


def test_keys_in_the_environment_are_always_among_the_secrets() -> None:
    redact = Redactor.of(environ={"RAGIDX_API_KEY": " rk-0123456789\n", "OPENAI_API_KEY": "ab1"})
    assert redact("got rk-0123456789 and rk-01234") == "got *** and ***"
    # Masked everywhere, a key this short would mask common words; as a credential it goes.
    assert redact("ab1 and Bearer ab1") == "ab1 and Bearer ***"


def test_a_url_loses_its_login_and_keeps_the_rest() -> None:
    url = "http://a%40b:p%3Aq@host:8080/v1?api-version=1"
    assert url_credentials(url) == ("a@b", "p:q")
    assert without_credentials(url) == "http://host:8080/v1?api-version=1"
    assert url_credentials("http://host/v1") is None
    assert without_credentials("http://[::1") == "http://[::1"  # not a URL; nothing to hide
    settings = HttpSettings(base_url=f"http://{USER}:{PASSWORD}@h/v1", model="m")
    assert settings.base_url == "http://h/v1" and settings.auth == "basic"
    assert PASSWORD not in repr(settings)


# -- every error path, end to end ------------------------------------------------------------


@pytest.mark.parametrize("key", [PLAIN_KEY, REGEX_KEY], ids=["plain", "regex"])
def test_no_secret_in_any_output_or_file(
    cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    write(work, DOCS)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    results: dict[str, Result] = {}
    # 401: the run stops; doctor fails the same way.
    with serve(Faults(dims=DIMS, api_key="the-right-key", echo_auth=True)) as server:
        results["401"] = index(cli, with_login(server))
        results["doctor"] = cli("doctor", "--base-url", with_login(server))
        results["doctor --json"] = cli("doctor", "--base-url", with_login(server), "--json")
    assert results["401"].exit_code == 2 and results["doctor"].exit_code == 1
    assert "Incorrect API key provided (POST http://127.0.0.1:" in results["401"].stderr
    assert f"Bearer {MASK}" in results["401"].stderr
    assert f"Bearer {MASK}" in results["doctor"].stdout
    # 400 for one input: that file fails, its reason quoting the server.
    with serve(Faults(dims=DIMS, poison="POISON", echo_auth=True)) as server:
        results["400"] = index(cli, with_login(server))
        sent = server.counters.authorizations
    assert sent == {f"Bearer {key}"}  # the key wins; the URL's login is not sent
    assert "the user and password in --base-url are not" in results["400"].stderr
    assert results["400"].exit_code == 1
    assert "rejected_input" in results["400"].files()["docs/b.md"]["reason"]
    # 500 until the retries run out: another file fails with the server's words.
    write(work, {"docs/c.md": "# Charlie\n\nA third note.\n"})
    with serve(Faults(dims=DIMS, fail_first=100, echo_auth=True)) as server:
        results["500"] = index(cli, with_login(server), "--max-retries", "1")
    reason = results["500"].files()["docs/c.md"]["reason"]
    assert reason.startswith("server_error: HTTP 500: injected 500") and f"Bearer {MASK}" in reason
    with serve(Faults(dims=DIMS, api_key="the-right-key", echo_auth=True)) as server:
        url = with_login(server)
        results["search"] = cli("search", "topic", "--db", "idx.db", "--base-url", url)
    assert results["search"].exit_code == 2 and "HTTP 401" in results["search"].stderr
    results["stats"] = cli("stats", "--db", "idx.db", "--failed")
    results["stats --json"] = cli("stats", "--db", "idx.db", "--failed", "--json")
    assert "injected 500" in results["stats"].stdout
    assert "settings: " in results["400"].stderr and "auth=bearer" in results["400"].stderr

    pieces = secret_pieces(key, PASSWORD, BASIC)
    for name, result in results.items():
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            assert not leaks(text, pieces), (name, stream, text)
        for record in _json_lines(result.stdout):
            assert not leaks(json.dumps(record, ensure_ascii=False), pieces), (name, record)
    for name, data in database_files(work).items():
        assert not leaks(data, pieces), name
    (url,) = db_rows(work / "idx.db", "SELECT value FROM manifest WHERE key = 'base_url'")[0]
    assert url.startswith("http://127.0.0.1:") and "@" not in url


def test_a_login_in_the_url_is_sent_as_basic_without_a_key(
    cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(work, DOCS)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("RAGIDX_API_KEY", raising=False)
    with serve(Faults(dims=DIMS, poison="POISON", echo_auth=True)) as server:
        result = index(cli, with_login(server))
        doctor = cli("doctor", "--base-url", with_login(server), "--json")
        sent = server.counters.authorizations
    assert sent == {f"Basic {BASIC}"}
    assert result.exit_code == 1 and "auth=basic" in result.stderr
    assert "are not" not in result.stderr  # no note: the login is what is sent
    reason = result.files()["docs/b.md"]["reason"]
    assert f"Basic {MASK}" in reason
    checks = {c["name"]: c["detail"] for c in doctor.json_lines()}
    assert checks["auth"].startswith("Basic") and "@" not in checks["endpoint"]
    pieces = secret_pieces(PASSWORD, BASIC)
    for text in (result.stdout, result.stderr, doctor.stdout, doctor.stderr):
        assert not leaks(text, pieces), text
    for name, data in database_files(work).items():
        assert not leaks(data, pieces), name


def test_the_wal_holds_no_secret_mid_run(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database files as they are the moment a failed file is committed, before the
    run's last checkpoint folds the WAL into the database."""
    write(work, {**DOCS, **{f"docs/n{i}.md": f"# Note {i}\n\nMore text {i}.\n" for i in range(8)}})
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    key = REGEX_KEY
    snapshots: list[dict[str, bytes]] = []

    def on_event(event: Any) -> None:
        if isinstance(event, FileDone) and event.status is FileStatus.FAILED:
            assert (work / "idx.db-wal").stat().st_size > 0
            snapshots.append(database_files(work))

    async def go(server: EmbeddingServer) -> None:
        options = EmbedOptions(base_url=with_login(server), api_key=key, max_retries=0)
        embedder = create_embedder("openai", dims=DIMS, options=options)
        try:
            config = IndexConfig(db_path=work / "idx.db", batch_inputs=1)
            await run_index([work / "docs"], embedder, config, on_event)
        finally:
            await embedder.aclose()

    with serve(Faults(dims=DIMS, poison="POISON", echo_auth=True)) as server:
        asyncio.run(go(server))
    names = {"idx.db", "idx.db-wal", lock_path(work / "idx.db").name}
    assert snapshots and names <= set(snapshots[0])
    pieces = secret_pieces(key, PASSWORD, BASIC)
    for snapshot in snapshots:
        for name, data in snapshot.items():
            assert not leaks(data, pieces), name
    (reason,) = db_rows(work / "idx.db", "SELECT reason FROM files WHERE status = 'failed'")[0]
    assert "Bearer ***" in reason


def _json_lines(stdout: str) -> list[Any]:
    records = []
    for line in stdout.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
