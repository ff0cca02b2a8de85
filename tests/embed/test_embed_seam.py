"""The embedder seam: what any embedder answers besides vectors, the options that reach an
HTTP client, the probe `ragidx doctor` reads, and who closes an embedder."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from helpers import write

import ragidx
from ragidx.config import IndexConfig
from ragidx.embed import (
    Embedder,
    EmbedOptions,
    HashEmbedder,
    HttpOptions,
    OpenAIEmbedder,
    complete,
    create_embedder,
)
from ragidx.errors import ConfigError, FatalEmbedError, TransientError

KEY = "sk-seam-0123456789abcdef"


class Bare:
    """Only what `MinimalEmbedder` asks: vectors, and what identifies them."""

    provider, model, dims, max_inputs, max_tokens = "bare", "b", 0, 8, 10_000

    def __init__(self) -> None:
        self.closed = 0

    async def embed(self, texts: Sequence[str]) -> Any:
        return np.ones((len(texts), 4), np.float32) / 2

    async def aclose(self) -> None:
        self.closed += 1


def test_a_provider_of_ragidx_is_a_whole_embedder_and_completing_it_changes_nothing() -> None:
    hashing = HashEmbedder(64)
    assert isinstance(hashing, Embedder) and complete(hashing) is hashing
    http = create_embedder("openai", options=EmbedOptions(base_url="http://h/v1"))
    assert isinstance(http, Embedder) and complete(http) is http


def test_a_bare_embedder_is_completed_as_one_without_a_server() -> None:
    bare = Bare()
    whole = complete(bare)
    assert isinstance(whole, Embedder) and not isinstance(bare, Embedder)
    assert (whole.provider, whole.model, whole.max_inputs, whole.max_tokens) == (
        "bare",
        "b",
        8,
        10_000,
    )
    assert whole.server is None and whole.adaptive is None and whole.stats is None
    assert whole.binding == {}
    assert asyncio.run(whole.input_limit()) is None
    whole.dims = 4  # a run binds dims: on the embedder it was given
    assert bare.dims == 4
    probe = asyncio.run(whole.probe("text"))
    assert probe.vectors is not None and probe.vectors.shape == (1, 4) and probe.status is None
    asyncio.run(whole.aclose())
    assert bare.closed == 1


def test_the_hash_embedder_answers_as_one_without_a_server() -> None:
    hashing = HashEmbedder(64)
    assert hashing.server is None and hashing.adaptive is None and hashing.stats is None
    assert hashing.binding == {} and asyncio.run(hashing.input_limit()) is None
    assert hashing.redact(f"Bearer {KEY}") == "Bearer ***"
    probe = asyncio.run(hashing.probe("apples and pears"))
    assert probe.vectors is not None and probe.vectors.shape == (1, 64)


def test_an_http_embedder_says_where_it_sends_and_what_it_holds_to() -> None:
    options = EmbedOptions(base_url="http://user:secret@h/v1", api_key=KEY, normalize=False)
    embedder = create_embedder("openai", options=options)
    assert embedder.server is not None
    assert embedder.server.base_url == "http://h/v1"
    assert embedder.server.url == "http://h/v1/embeddings"
    assert embedder.server.auth == "bearer" and embedder.server.unsent_login
    assert "secret" not in repr(embedder.server)
    assert embedder.binding == {"normalize": "false"}
    assert embedder.stats is not None and embedder.adaptive is not None
    assert KEY not in embedder.redact(f"the key {KEY} is wrong")
    asyncio.run(embedder.aclose())


# -- one value object from the command line to the client -----------------------------------


def test_every_http_option_reaches_the_client() -> None:
    """A new field of `HttpOptions` needs no other line to reach `HttpSettings`."""
    changed = {
        "timeout": 7.0,
        "max_retries": 3,
        "deadline": 99.0,
        "concurrency": 5,
        "max_inputs": 11,
        "max_tokens": 12_345,
        "rpm": 30.0,
        "tpm": 40_000.0,
        "normalize": False,
    }
    fields = {f.name for f in dataclasses.fields(HttpOptions)} - {"base_url", "api_key"}
    assert set(changed) == fields, "a new option: give it a value here"
    options = EmbedOptions(base_url="http://h/v1", api_key=KEY, **changed)
    embedder = create_embedder("openai", options=options)
    settings = embedder.settings  # type: ignore[attr-defined]
    assert {name: getattr(settings, name) for name in changed} == changed
    assert settings.api_key == KEY and settings.base_url == "http://h/v1"
    asyncio.run(embedder.aclose())


def test_options_are_taken_by_their_setting_names_and_held_to_their_rules() -> None:
    values = {"batch_size": 3, "max_batch_tokens": 900, "timeout": 2.0, "json_out": True}
    options = EmbedOptions.from_settings({**values, "api_key": "never from here"}, max_retries=0)
    assert (options.max_inputs, options.max_tokens, options.timeout) == (3, 900, 2.0)
    assert options.max_retries == 0 and options.api_key is None
    with pytest.raises(ConfigError, match="--batch-size"):
        EmbedOptions.from_settings({"batch_size": 0})


# -- the probe `ragidx doctor` reads ---------------------------------------------------------


def _openai(handler: Any) -> OpenAIEmbedder:
    options = EmbedOptions(
        base_url="http://h/v1", api_key=KEY, transport=httpx.MockTransport(handler)
    )
    embedder = create_embedder("openai", options=options)
    assert isinstance(embedder, OpenAIEmbedder)
    return embedder


def _probe(handler: Any) -> Any:
    async def go() -> Any:
        embedder = _openai(handler)
        try:
            return await embedder.probe("text")
        finally:
            await embedder.aclose()

    return asyncio.run(go())


def _answer(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    vector = np.asarray([3.0, 4.0], "<f4")
    embedding: Any = (
        base64.b64encode(vector.tobytes()).decode() if "encoding_format" in body else [3.0, 4.0]
    )
    headers = {"x-ratelimit-remaining-requests": "99"}
    return httpx.Response(
        200, json={"data": [{"index": 0, "embedding": embedding}]}, headers=headers
    )


def test_a_probe_reports_the_answer_as_the_server_sent_it() -> None:
    probe = _probe(_answer)
    assert probe.status == 200 and probe.error is None and probe.notes == ()
    assert probe.vectors.tolist() == [[3.0, 4.0]]  # not scaled: doctor says what ragidx does
    assert probe.rate_limits == {"x-ratelimit-remaining-requests": "99"}


def test_a_probe_asks_again_for_floats_where_base64_is_refused_and_says_so() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "encoding_format" in json.loads(request.content):
            return httpx.Response(400, json={"error": {"message": "unknown encoding_format"}})
        return _answer(request)

    probe = _probe(handler)
    assert probe.notes == (("encoding", "the server sends floats, not base64"),)
    assert probe.status == 200 and probe.vectors is not None


def test_a_probe_reports_a_refusal_once_and_no_answer_without_a_status() -> None:
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, json={"error": {"message": "bad key"}})

    refused = _probe(refuse)
    assert refused.status == 401 and isinstance(refused.error, FatalEmbedError)
    assert len(calls) == 1  # not retried

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    nothing = _probe(down)
    assert nothing.status is None and isinstance(nothing.error, TransientError)
    assert nothing.error.kind == "unreachable"


def test_a_probe_tells_an_answer_of_another_shape() -> None:
    probe = _probe(lambda request: httpx.Response(200, json={"vectors": []}))
    assert probe.status == 200 and probe.vectors is None
    assert probe.unreadable is not None and probe.unreadable.startswith("KeyError")


# -- who closes an embedder ------------------------------------------------------------------


def test_index_closes_the_embedder_its_event_loop_ran(work: Path) -> None:
    write(work, {"docs/a.md": "# A\n\napples\n"})
    bare = Bare()
    summary = ragidx.index([work / "docs"], bare, IndexConfig(db_path=work / "idx.db"))
    assert summary.ok and summary.chunks == 1
    assert bare.closed == 1 and bare.dims == 4


def test_run_index_leaves_the_embedder_to_its_caller(work: Path) -> None:
    write(work, {"docs/a.md": "# A\n\napples\n"})
    bare = Bare()
    config = IndexConfig(db_path=work / "idx.db")
    summary = asyncio.run(ragidx.run_index([work / "docs"], bare, config))
    assert summary.ok and bare.closed == 0
