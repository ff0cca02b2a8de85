"""The HTTP client through `httpx.MockTransport`: classification, retries, waits, providers.

Sleeps are injected and recorded, so retry tests take milliseconds and check the waits.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import numpy as np
import pytest
from helpers import FakeClock

from ragidx.embed import OllamaEmbedder, OpenAIEmbedder, TEIEmbedder
from ragidx.embed.http import HttpEmbedder, HttpSettings, parse_duration, retry_after
from ragidx.errors import FatalEmbedError, RejectedError, TransientError

Handler = Callable[[httpx.Request], httpx.Response]
KEY = "sk-test-0123456789abcdef"


def vectors_for(texts: list[str], dims: int = 4) -> list[list[float]]:
    return [[float(len(t)), float(i), 1.0, 0.5][:dims] for i, t in enumerate(texts)]


def openai_ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    data = [
        {"index": i, "embedding": base64.b64encode(np.asarray(v, "<f4").tobytes()).decode()}
        for i, v in enumerate(vectors_for(body["input"]))
    ]
    return httpx.Response(200, json={"data": data[::-1]})  # reversed: order is by index


class Recorder:
    """A handler that answers from a script of responses, then with `then`."""

    def __init__(self, script: list[Any], then: Handler = openai_ok) -> None:
        self.script = script
        self.then = then
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            return step if isinstance(step, httpx.Response) else step(request)
        return self.then(request)


def make(
    handler: Handler,
    cls: type[HttpEmbedder] = OpenAIEmbedder,
    **settings: Any,
) -> tuple[HttpEmbedder, list[float]]:
    clock = FakeClock()
    options = {"base_url": "http://server/v1", "model": "m", "api_key": KEY, **settings}
    embedder = cls(
        HttpSettings(**options),
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 1.0,
    )
    return embedder, clock.waits


def embed(embedder: HttpEmbedder, texts: list[str]) -> np.ndarray[Any, Any]:
    async def go() -> np.ndarray[Any, Any]:
        try:
            return await embedder.embed(texts)
        finally:
            await embedder.aclose()

    return asyncio.run(go())


def test_openai_request_and_answer_ordered_by_index() -> None:
    recorder = Recorder([])
    embedder, waits = make(recorder, normalize=False)  # the vectors exactly as sent
    vectors = embed(embedder, ["a", "bb", "ccc"])
    assert vectors.tolist() == vectors_for(["a", "bb", "ccc"])
    (request,) = recorder.requests
    assert request.url == "http://server/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == {
        "model": "m", "input": ["a", "bb", "ccc"], "encoding_format": "base64",
    }  # fmt: skip
    assert waits == [] and embedder.dims == 0  # one answer binds nothing (prepare.learn_dims)


def test_a_usage_count_in_characters_is_not_taken_for_tokens() -> None:
    # Infinity counts characters: five times our estimate for prose, under it for CJK text.
    def answer(request: httpx.Request) -> httpx.Response:
        response = openai_ok(request)
        body = response.json()
        body["usage"] = {"prompt_tokens": sum(map(len, json.loads(request.content)["input"]))}
        return httpx.Response(200, json=body)

    embedder, waits = make(Recorder([], then=answer), tpm=6000)  # 100 tokens a second
    prose, cjk = "word " * 80, "字" * 40  # our estimates: 80 tokens each

    async def go() -> None:
        for text in (prose, cjk, prose):
            await embedder.embed([text])
        await embedder.aclose()

    asyncio.run(go())
    assert embedder.token_ratio == 1.0
    # Every request charged our estimate, not 400 tokens for prose nor 40 for CJK text.
    assert waits == pytest.approx([0.8, 0.8])


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    recorder = Recorder([httpx.Response(status, json={"error": "busy"})] * 2)
    embedder, waits = make(recorder)
    assert embed(embedder, ["x"]).shape == (1, 4)
    assert len(recorder.requests) == 3
    # Full jitter at its ceiling: 0.5 s then 1 s; an overload (429, no Retry-After) waits less.
    assert waits == ([0.1, 0.2] if status == 429 else [0.5, 1.0])
    assert embedder.stats.retries == 2
    assert embedder.stats.rate_limited == (2 if status == 429 else 0)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [({"retry-after": "7"}, 7.0), ({"retry-after": "2.5"}, 2.5), ({"retry-after-ms": "1500"}, 1.5)],
)
def test_retry_after_is_obeyed(headers: dict[str, str], wait: float) -> None:
    recorder = Recorder([httpx.Response(429, headers=headers, json={"error": "slow down"})])
    embedder, waits = make(recorder)
    embed(embedder, ["x"])
    assert waits == [wait]


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    headers = httpx.Headers(
        {"retry-after": format_datetime(now + timedelta(seconds=30), usegmt=True)}
    )
    assert retry_after(headers, now=now.timestamp()) == 30.0
    assert retry_after(httpx.Headers({"retry-after": "soon"})) is None


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), "unreachable"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "network"),
        (httpx.ReadTimeout("slow"), "timeout"),
    ],
)
def test_transport_errors_are_retried(exc: Exception, kind: str) -> None:
    recorder = Recorder([exc])
    embedder, waits = make(recorder)
    assert embed(embedder, ["x"]).shape == (1, 4)
    assert len(recorder.requests) == 2 and waits == [0.5]


def test_retries_are_bounded() -> None:
    recorder = Recorder([httpx.Response(503, json={"error": "overloaded"})] * 10)
    embedder, waits = make(recorder, max_retries=3)
    with pytest.raises(TransientError) as caught:
        embed(embedder, ["x"])
    assert caught.value.kind == "server_error" and "503" in caught.value.message
    assert len(recorder.requests) == 4 and waits == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(401, json={"error": {"message": "Incorrect API key"}}), "auth"),
        (httpx.Response(403, json={"error": {"message": "forbidden"}}), "auth"),
        (httpx.Response(429, json={"error": {"code": "insufficient_quota"}}), "quota"),
    ],
)
def test_auth_and_quota_are_fatal_and_not_retried(response: httpx.Response, kind: str) -> None:
    recorder = Recorder([response])
    embedder, waits = make(recorder)
    with pytest.raises(FatalEmbedError) as caught:
        embed(embedder, ["x"])
    assert caught.value.kind == kind and caught.value.hint
    assert len(recorder.requests) == 1 and waits == []
    assert KEY not in caught.value.message


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(413, text="Payload Too Large"), "too_large"),
        (
            httpx.Response(422, json={"error": "batch size 64 > max_client_batch_size 32"}),
            "too_large",
        ),
        (httpx.Response(500, json={"error": "input is too large to process"}), "too_large"),
        (
            httpx.Response(400, json={"error": {"message": "maximum context length is 512"}}),
            "too_long",
        ),
        (httpx.Response(400, json={"error": {"message": "invalid input"}}), "rejected_input"),
        (httpx.Response(404, text="not found"), "rejected_input"),
    ],
)
def test_refusals_are_classed_and_not_retried(response: httpx.Response, kind: str) -> None:
    recorder = Recorder([response])
    embedder, waits = make(recorder)
    with pytest.raises(RejectedError) as caught:
        embed(embedder, ["x", "y"])
    assert caught.value.kind == kind
    assert len(recorder.requests) == 1 and waits == []


@pytest.mark.parametrize(
    "bad",
    [
        httpx.Response(200, text='{"data": [{"index": 0, "embedding": [0.1,'),
        httpx.Response(200, json={"data": [{"index": 0, "embedding": [1, 2, 3, 4]}]}),  # 1 of 2
        httpx.Response(200, json={"data": [{"index": 0, "embedding": [1, 2, 3, 4]}] * 2}),
        httpx.Response(200, json={"data": [{"index": i, "embedding": [1, 2, 3]} for i in (0, 1)]}),
        httpx.Response(
            200, json={"data": [{"index": i, "embedding": [1, "NaN", 3, 4]} for i in (0, 1)]}
        ),
        httpx.Response(200, json={"unexpected": True}),
    ],
    ids=["malformed", "too-few", "repeated-index", "wrong-dims", "nan", "shape"],
)
def test_invalid_answers_are_retried_then_reported(bad: httpx.Response) -> None:
    recorder = Recorder([bad])
    embedder, _ = make(recorder, dims=4)
    assert embed(embedder, ["x", "y"]).shape == (2, 4)
    recorder = Recorder([bad] * 3)
    embedder, _ = make(recorder, dims=4, max_retries=2)
    with pytest.raises(TransientError) as caught:
        embed(embedder, ["x", "y"])
    assert caught.value.kind == "invalid_response"


def test_base64_refused_falls_back_to_floats() -> None:
    def floats_only(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "encoding_format" in body:
            return httpx.Response(400, json={"error": {"message": "unknown encoding_format"}})
        data = [{"index": i, "embedding": v} for i, v in enumerate(vectors_for(body["input"]))]
        return httpx.Response(200, json={"data": data})

    recorder = Recorder([], then=floats_only)
    embedder, _ = make(recorder)
    embed(embedder, ["a", "b"])
    assert len(recorder.requests) == 2
    assert isinstance(embedder, OpenAIEmbedder) and embedder.base64 is False


def test_ollama_and_tei_shapes() -> None:
    def ollama(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/embed"
        body = json.loads(request.content)
        assert body["truncate"] is False
        return httpx.Response(200, json={"embeddings": vectors_for(body["input"])})

    def tei(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/embed"
        return httpx.Response(200, json=vectors_for(json.loads(request.content)["inputs"]))

    for cls, handler in ((OllamaEmbedder, ollama), (TEIEmbedder, tei)):
        embedder, _ = make(
            Recorder([], then=handler), cls, base_url="http://server", normalize=False
        )
        assert embed(embedder, ["a", "bb"]).tolist() == vectors_for(["a", "bb"])


def test_vectors_are_scaled_to_unit_length_by_default() -> None:
    embedder, _ = make(Recorder([]))
    vectors = embed(embedder, ["a", "bb", "ccc"]).astype(np.float64)
    sent = np.array(vectors_for(["a", "bb", "ccc"]))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors, sent / np.linalg.norm(sent, axis=1, keepdims=True), atol=1e-6)


def test_a_slow_attempt_times_out_and_is_retried() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)
        return openai_ok(request)

    embedder, waits = make(handler, timeout=0.05)  # type: ignore[arg-type]
    assert embed(embedder, ["x"]).shape == (1, 4)
    assert calls == 2 and waits == [0.5]


def test_cancellation_is_not_retried() -> None:
    started = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(5)
        return openai_ok(request)

    embedder, waits = make(handler)  # type: ignore[arg-type]

    async def go() -> None:
        task = asyncio.create_task(embedder.embed(["x"]))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await embedder.aclose()

    asyncio.run(go())
    assert embedder.stats.requests == 1 and waits == []


def test_the_key_is_not_in_repr() -> None:
    settings = HttpSettings(base_url="http://x", model="m", api_key=KEY)
    assert KEY not in repr(settings)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("250ms", 0.25), ("1h2m3.5s", 3723.5), ("20ms", 0.02)],
)
def test_reset_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "5"])
def test_unreadable_durations(text: str | None) -> None:
    assert parse_duration(text) is None


def test_an_emptying_budget_slows_down_before_a_429() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        response = openai_ok(request)
        response.headers["x-ratelimit-remaining-requests"] = "0"
        response.headers["x-ratelimit-reset-requests"] = "2s"
        return response

    embedder, waits = make(Recorder([], then=answer))

    async def go() -> None:
        await embedder.embed(["a"])
        await embedder.embed(["b"])
        await embedder.aclose()

    asyncio.run(go())
    assert waits == [2.0]


def test_a_429_holds_back_every_request_not_just_its_own() -> None:
    recorder = Recorder([httpx.Response(429, headers={"retry-after": "3"}, json={"error": "x"})])
    embedder, waits = make(recorder, rpm=6000)

    async def go() -> None:
        await asyncio.gather(embedder.embed(["a"]), embedder.embed(["b"]))
        await embedder.aclose()

    asyncio.run(go())
    assert 3.0 in waits and embedder.stats.rate_limited == 1
    assert len(recorder.requests) == 3


def test_empty_inputs_are_never_sent() -> None:
    recorder = Recorder([])
    embedder, _ = make(recorder, cls=OllamaEmbedder)
    with pytest.raises(RejectedError, match="empty input"):
        embed(embedder, ["fine", "  "])
    assert recorder.requests == []


def test_the_token_budget_is_spent_by_the_servers_count() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        response = openai_ok(request)
        body = response.json()
        body["usage"] = {"prompt_tokens": 50}  # the server counts half our estimate
        return httpx.Response(200, json=body)

    embedder, waits = make(Recorder([], then=answer), tpm=6000)  # 100 tokens a second
    text = "word " * 80  # our estimate: 80 tokens

    async def go() -> None:
        for _ in range(3):
            await embedder.embed([text])
        await embedder.aclose()

    asyncio.run(go())
    assert embedder.token_ratio == pytest.approx(50 / 80)
    # The first request went into debt by our estimate (80 tokens: 0.8 s to pay off); the
    # second was charged the server's count (50: 0.5 s).
    assert waits == pytest.approx([0.8, 0.5])


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (
            httpx.Response(504, json={"error": {"message": "upstream request took too long"}}),
            "server_error",
        ),
        (httpx.Response(503, text="Server too busy: queue too large"), "server_error"),
        (httpx.Response(408, text="request too long to arrive"), "timeout"),
    ],
)
def test_gateway_errors_that_sound_like_size_are_still_retried(
    response: httpx.Response, kind: str
) -> None:
    recorder = Recorder([response])
    embedder, _ = make(recorder)
    assert embed(embedder, ["x"]).shape == (1, 4)
    recorder = Recorder([response] * 3)
    embedder, _ = make(recorder, max_retries=2)
    with pytest.raises(TransientError) as caught:
        embed(embedder, ["x"])
    assert caught.value.kind == kind


def test_should_retry_false_is_final_and_not_split() -> None:
    response = httpx.Response(503, headers={"x-should-retry": "false"}, json={"error": "no"})
    recorder = Recorder([response])
    embedder, waits = make(recorder)
    with pytest.raises(RejectedError) as caught:
        embed(embedder, ["x", "y"])
    assert caught.value.kind == "server_error" and waits == []


def test_an_undecodable_body_is_an_invalid_response() -> None:
    bad = httpx.Response(
        200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip at all")
    )
    recorder = Recorder([bad])
    embedder, _ = make(recorder)
    assert embed(embedder, ["x"]).shape == (1, 4)
    assert len(recorder.requests) == 2


def test_a_long_retry_after_is_obeyed_within_the_deadline_or_ends_the_retries() -> None:
    asked = httpx.Response(429, headers={"retry-after": "300"}, json={"error": "wait"})
    embedder, waits = make(Recorder([asked]))
    embed(embedder, ["x"])
    assert waits == [300.0]  # never sooner than asked
    embedder, waits = make(Recorder([asked]), deadline=100)
    with pytest.raises(TransientError):
        embed(embedder, ["x"])
    assert waits == []  # a wait past the deadline is not started


def test_a_key_an_http_header_cannot_carry_is_refused_unshown() -> None:
    from ragidx.embed import api_key_from_env
    from ragidx.errors import ConfigError

    assert api_key_from_env("openai", {"OPENAI_API_KEY": " sk-abc\n"}) == "sk-abc"
    with pytest.raises(ConfigError) as caught:
        api_key_from_env("tei", {"RAGIDX_API_KEY": "sk-a bc"})
    assert "sk-a" not in caught.value.message and "RAGIDX_API_KEY" in caught.value.message


def test_a_server_that_never_answered_is_given_up_on_after_three_refusals() -> None:
    recorder = Recorder([httpx.ConnectError("All connection attempts failed")] * 10)
    embedder, waits = make(recorder, base_url="http://user:pw@server:8080/v1", max_retries=6)
    with pytest.raises(FatalEmbedError) as caught:
        embed(embedder, ["x"])
    error = caught.value
    assert len(recorder.requests) == 3 and len(waits) == 2
    assert error.kind == "unreachable"
    assert error.message == (
        "cannot connect to http://server:8080/v1/embeddings:"
        " All connection attempts failed (3 attempts)"
    )
    assert error.hint is not None and "ragidx doctor" in error.hint


def test_a_server_that_answered_once_and_went_away_gets_every_retry() -> None:
    recorder = Recorder([openai_ok, *[httpx.ConnectError("refused")] * 10])
    embedder, _ = make(recorder, max_retries=4)

    async def go() -> None:
        try:
            await embedder.embed(["x"])
            await embedder.embed(["y"])  # a restart mid-run: this batch fails, not the run
        finally:
            await embedder.aclose()

    with pytest.raises(TransientError) as caught:
        asyncio.run(go())
    assert caught.value.kind == "unreachable" and len(recorder.requests) == 1 + 5
