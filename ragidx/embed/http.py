"""One retried HTTP client for embedding servers, and the base class of the HTTP providers.

A provider says where to POST, what to send and how to read the answer; everything else is
here: one `httpx.AsyncClient` per embedder (connections sized to the concurrency), a deadline
per attempt of our own (httpx's pool timeout is not reliable under load), classification of
every failure (`ragidx.errors`), and retries with tenacity: transport errors, timeouts, 408,
409, 429 and 5xx, after exactly what `retry-after-ms` / `Retry-After` asks, otherwise after
full-jitter exponential backoff, bounded by attempts and a deadline (a wait that would pass the
deadline ends the retries). A batch of several inputs that times out is not sent whole again:
the caller splits it. The latency of each answer steers batch sizes and requests in flight
(`adaptive`). Cancellation is never retried (only `TransientError` is).

Whatever a server sends, memory and time stay bounded: the deadline of an attempt covers the
body too, and a body is read as it streams, inflated a bounded piece at a time (`body`), up
to what the batch can need (`answer_limit`); an error's body, to its first few KB.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import math
import random
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.stop import stop_base

from ragidx.chunk.tokens import estimate_tokens
from ragidx.embed.adaptive import Adaptive
from ragidx.embed.base import Auth, EmbedStats, Probe, Server, Vectors, unit_rows, validate_vectors
from ragidx.embed.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)
from ragidx.embed.limiter import AdaptiveConcurrency, RateLimiter, Reading, Unit
from ragidx.embed.options import HttpOptions
from ragidx.errors import (
    EmbedError,
    FatalEmbedError,
    InvalidVectors,
    RejectedError,
    TransientError,
)
from ragidx.redact import Redactor, redact_error, url_credentials, without_credentials

__all__ = [
    "ANSWER_CAP",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ERROR_BODY",
    "AnswerTooLarge",
    "HttpEmbedder",
    "HttpSettings",
    "HttpStats",
    "answer_limit",
    "body",
    "classify",
    "parse_duration",
    "retry_after",
]

BACKOFF_BASE = 0.5
OVERLOAD_BACKOFF_BASE = 0.1
BACKOFF_CAP = 30.0
_SENT = "ragidx.sent"  # request extension: when it left, by the limiter's clock

Sleep = Callable[[float], Awaitable[None]]

# The bytes an answer may take (`answer_limit`). A number is at most 26 characters as a JSON
# float ("-1.2345678901234567e-308, "), more pretty-printed, under 6 in base64; each vector
# comes with its own keys ({"object": "embedding", "index": 2047, ...}), the answer with a
# model name and usage. Vectors of a model not bound yet are taken as wide as any served
# (16,384: Llama 3.1 405B's hidden size).
_BYTES_PER_NUMBER = 40
_BYTES_PER_INPUT = 1024
_ANSWER_MARGIN = 64 * 1024
_WIDEST = 16_384
ANSWER_CAP = 64 * 1024 * 1024
"""No answer is read past this, whatever the batch: 2,048 vectors of 3,072 numbers in base64
(OpenAI's largest batch and model, as ragidx asks for them) take 34 MB, and 32 vectors of
16,384 numbers as JSON floats (the other providers' batch) 21 MB. Reading and parsing one
takes about three times its size; a batch whose answer would pass the cap is split."""
ERROR_BODY = 8 * 1024
"""What is read of an error's body: its message is in the first few hundred bytes."""
_STEP = 64 * 1024  # inflated at most at a time: a gzip bomb grows a thousandfold

# Tries before a server that has never answered is taken for not running.
_CONNECT_ATTEMPTS = 3
_UNREACHABLE = (
    "is the server running and listening there? Check --base-url (RAGIDX_BASE_URL),"
    " or run `ragidx doctor`"
)

_SIZE_WORDS = (
    "too many inputs",
    "batch size",
    "max_client_batch_size",
    "too large",
    "payload too large",
    "request entity too large",
    "must have less than",
    "maximum request size",
)
_LENGTH_WORDS = (
    "maximum context length",
    "context length",
    "too long",
    "input length",
    "exceeds the maximum",
    "max_input_length",
    "longer than",
)


@dataclass(frozen=True, kw_only=True)
class HttpSettings(HttpOptions):
    """What one client is built with: the options (`HttpOptions`), the server and the model.
    The API key never shows in `repr`.

    A user name and password in `base_url` (`http://user:pw@host/v1`) move to `login`, which
    never shows either: `base_url` is what may be shown and stored. They are sent (as
    `Authorization: Basic`) only where there is no API key; with one, the key is sent as
    `Authorization: Bearer` and the login is not.
    """

    base_url: str
    model: str
    login: tuple[str, str] | None = field(default=None, repr=False)
    dims: int | None = None

    def __post_init__(self) -> None:
        login = url_credentials(self.base_url)
        if login is not None:
            object.__setattr__(self, "base_url", without_credentials(self.base_url))
            object.__setattr__(self, "login", self.login or login)

    @property
    def auth(self) -> Auth:
        """What authenticates the requests: `bearer` (the API key), `basic` (the login in
        the base URL, where no key is set) or `none`."""
        return "bearer" if self.api_key else "basic" if self.login else "none"


HttpStats = EmbedStats
"""What the client did (`EmbedStats`, under its former name)."""


class HttpEmbedder:
    """Base of the HTTP providers: subclasses give `path`, `payload` and `parse`."""

    provider: str = "http"
    path: ClassVar[str] = "/"
    default_base_url: ClassVar[str] = "http://localhost"
    default_model: ClassVar[str] = "default"
    default_max_inputs: ClassVar[int] = 32
    default_max_tokens: ClassVar[int] = 16_384

    def __init__(
        self,
        settings: HttpSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.model = settings.model
        self.dims = settings.dims or 0
        self.max_inputs = settings.max_inputs or self.default_max_inputs
        self.max_tokens = settings.max_tokens or self.default_max_tokens
        self.stats = EmbedStats()
        self.redact = Redactor.of(keys=[settings.api_key], logins=[settings.login])
        """The step every message from the server or the transport passes through."""
        self._sleep = sleep
        self._jitter = jitter
        self._client = _client(settings, transport)
        self.limiter = RateLimiter(settings.rpm, settings.tpm, clock=clock, sleep=sleep)
        self._client.event_hooks["request"].append(self._stamp)
        self.token_ratio = 1.0
        self._calibrated = 0
        self._usage_is_tokens = True
        self.concurrency = AdaptiveConcurrency(settings.concurrency)
        self._answered = False  # has the server ever answered (with any status)?
        self.adaptive = Adaptive(
            timeout=settings.timeout,
            ceiling=settings.concurrency,
            cap=self.max_tokens,
            clock=clock,
        )

    def payload(self, texts: Sequence[str]) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, body: Any, count: int) -> Vectors:
        """Turn a decoded JSON answer into vectors; raise KeyError/TypeError/ValueError."""
        raise NotImplementedError

    @property
    def server(self) -> Server:
        settings = self.settings
        unsent = settings.login is not None and settings.auth == "bearer"
        return Server(without_credentials(settings.base_url), self.url, settings.auth, unsent)

    @property
    def binding(self) -> dict[str, str]:
        return {"normalize": "true" if self.settings.normalize else "false"}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def probe(self, text: str) -> Probe:
        """`text` sent once: no retry, no pacing, nothing learned for a run (see `Embedder`)."""
        notes: list[tuple[str, str]] = []
        started = time.perf_counter()
        try:
            response = await self._post(self.payload([text]))
            if (note := self._fall_back(response)) is not None:
                notes.append(note)
                started = time.perf_counter()
                response = await self._post(self.payload([text]))
        except EmbedError as exc:
            return Probe(notes=tuple(notes), error=exc)
        answer = Probe(
            notes=tuple(notes),
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        if not 200 <= response.status_code < 300:
            return dataclasses.replace(answer, error=classify(response))
        try:
            vectors = validate_vectors(self.parse(response.json(), 1), 1, 0)
        except InvalidVectors as exc:  # the shape is right, the numbers are not (zeros, NaN)
            return dataclasses.replace(answer, error=exc)
        except (ValueError, KeyError, TypeError, EmbedError) as exc:
            return dataclasses.replace(answer, unreadable=f"{type(exc).__name__}: {exc}")
        limits = {k: v for k, v in response.headers.items() if k.startswith("x-ratelimit-")}
        return dataclasses.replace(answer, vectors=vectors, rate_limits=limits)

    def _fall_back(self, response: httpx.Response) -> tuple[str, str] | None:
        """After an answer that shows the server cannot take what this provider asks for,
        ask as it can from then on, and say so as (name, detail); None for any other."""
        return None

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not all(t.strip() for t in texts):
            # Ollama answers "" with zero vectors and others refuse it: never send one.
            raise RejectedError("empty input: nothing to embed", kind="rejected_input")

        capped = 0

        def worth_retrying(exc: BaseException) -> bool:
            nonlocal capped
            if not isinstance(exc, TransientError):
                return False
            # A batch that timed out is not sent whole again: the caller splits it.
            if exc.kind == "timeout" and len(texts) > 1:
                return False
            if exc.retries is not None:
                capped += 1
                return capped <= exc.retries
            return True

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_retries + 1)
            | stop_before_delay(self.settings.deadline)
            | _NothingListens(self),
            wait=self._wait,
            retry=retry_if_exception(worth_retrying),
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(texts)
        except TransientError as exc:
            if not self._answered and exc.kind == "unreachable":
                # Nothing has ever answered: every file would fail the same way.
                tries = retrying.statistics.get("attempt_number", 1)
                message = f"{exc.message} ({tries} attempt{'s' if tries > 1 else ''})"
                raise FatalEmbedError(message, kind="unreachable", hint=_UNREACHABLE) from None
            raise
        raise AssertionError("unreachable: tenacity re-raises the last error")

    @property
    def url(self) -> str:
        """Where requests go, without any user:password the base URL holds."""
        url = httpx.URL(self.settings.base_url.rstrip("/") + self.path)
        return str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)

    async def _attempt(self, texts: Sequence[str]) -> Vectors:
        cost = sum(map(estimate_tokens, texts)) if self.limiter.tokens is not None else 0
        work = cost or sum(map(estimate_tokens, texts))
        async with self.adaptive.turn() as turn, self.concurrency:
            if len(texts) > 1 and self.adaptive.holds_back(work):
                raise RejectedError(
                    f"held back: {work} tokens would not come back well within the timeout",
                    kind="too_large",
                )
            await self.limiter.acquire(round(cost * self.token_ratio))
            self.stats.requests += 1
            self.adaptive.start(turn)
            try:
                response = await self._post(self.payload(texts), len(texts))
            except TransientError as exc:
                if exc.kind == "timeout":
                    self.adaptive.timed_out(turn, work)
                raise
            self._answered = True
            self._heed(response, cost, texts)
            if response.status_code >= 400:
                raise self._refused(response)
            self.adaptive.answered(turn, work)
            self.concurrency.succeeded()
        return self._read(response, texts, cost)

    async def input_limit(self) -> int | None:
        """Tokens the model reads in one input, where the server says; None where not."""
        return None

    def usage(self, body: Any) -> int | None:
        """Tokens the server says the request cost, where its answer tells."""
        return None

    def _calibrate(self, body: Any, cost: int) -> None:
        # Our estimate errs high; where the server reports its own count, spend the token
        # budget by that instead, smoothed, and never below a quarter of our estimate. A
        # server that once counts over twice our estimate is not counting tokens (Infinity
        # counts characters): its counts are ignored from then on.
        used = self.usage(body)
        if not (used and cost and self._usage_is_tokens):
            return
        if used > 2 * cost:
            self._usage_is_tokens, self.token_ratio = False, 1.0
            return
        ratio = max(used / cost, 0.25)
        first = self._calibrated == 0
        self.token_ratio = ratio if first else 0.8 * self.token_ratio + 0.2 * ratio
        self._calibrated += 1

    def _refused(self, response: httpx.Response) -> Exception:
        error = redact_error(classify(response), self.redact)  # it may repeat our headers
        if error.kind == "rate_limited":
            self.stats.rate_limited += 1
        if error.kind == "rate_limited" or response.status_code == 503:
            self.concurrency.overloaded()
        if isinstance(error, TransientError) and error.retry_after:
            self.limiter.pause(min(error.retry_after, self.settings.deadline))
        return error

    def _heed(self, response: httpx.Response, cost: int, texts: Sequence[str]) -> None:
        """Pace by the budgets the server reports (x-ratelimit-*), and hold back before they
        run out: the limiter learns how fast they refill (`ragidx.embed.limiter.ServerBudget`)."""
        headers = response.headers
        if "x-ratelimit-remaining-tokens" in headers and not cost:
            cost = sum(map(estimate_tokens, texts))
        sent = response.request.extensions.get(_SENT, self.limiter.clock())
        # A refused request took nothing. Our token estimate errs high, and a budget thought
        # larger than it is paces too fast: tokens count only by the server's own count.
        took = response.status_code != 429
        calibrated = self._calibrated > 0 and self._usage_is_tokens
        tokens = cost * self.token_ratio
        units: tuple[tuple[Unit, float, float], ...] = (
            ("requests", 1.0, 1.0 * took),
            ("tokens", max(tokens, 1.0), tokens * (took and calibrated)),
        )
        for unit, need, spent in units:
            reading = _reading(headers, unit)
            if reading is not None:
                self.limiter.heed(unit, reading, spent=spent, need=need, at=sent)

    async def _stamp(self, request: httpx.Request) -> None:
        # When a request left, by the limiter's clock: the server's budget reading dates from then.
        request.extensions[_SENT] = self.limiter.clock()

    def _read(self, response: httpx.Response, texts: Sequence[str], cost: int) -> Vectors:
        """The answer's vectors, or `TransientError` (invalid_response) to retry it.

        With dims bound, every vector must have that many numbers; with dims 0 (not bound
        yet), any width will do as long as all vectors share it. Nothing is learned here:
        one answer cannot vouch for itself (`prepare.learn_dims` binds dims).
        """
        if 300 <= response.status_code < 400:
            raise classify(response)  # never followed: the key would go where it points
        try:
            body = response.json()
        except ValueError:
            raise TransientError("malformed JSON in the answer", kind="invalid_response") from None
        self._calibrate(body, cost)
        try:
            vectors = validate_vectors(self.parse(body, len(texts)), len(texts), self.dims)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise TransientError(
                self._scrub(f"unexpected answer: {type(exc).__name__}: {exc}"),
                kind="invalid_response",
            ) from None
        except InvalidVectors as exc:
            raise TransientError(self._scrub(exc.message), kind="invalid_response") from None
        return unit_rows(vectors) if self.settings.normalize else vectors

    async def _post(self, payload: dict[str, Any], inputs: int = 1) -> httpx.Response:
        """The server's answer to `inputs` texts, its body read whole (and inflated), or
        `TransientError`. The timeout covers the whole attempt, body included: httpx's own
        cover each phase, and a body trickled a byte at a time passes none of them."""
        limit = answer_limit(inputs, self.dims)
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self._client.stream("POST", self.path, json=payload) as response:
                    return await body(response, limit)
        except AnswerTooLarge as exc:
            message = f"answer too large: {exc} for {inputs} input{'s' if inputs > 1 else ''}"
            if limit == ANSWER_CAP and inputs > 1:
                # Past the cap, not past what the batch can need: a smaller batch may pass.
                raise RejectedError(message, kind="too_large") from None
            # Once more, for a proxy's passing fault; a server that sends it twice means it.
            raise TransientError(message, kind="invalid_response", retries=1) from None
        except (TimeoutError, httpx.TimeoutException):
            raise TransientError(
                f"no answer within {self.settings.timeout:g} s", kind="timeout"
            ) from None
        except httpx.ConnectError as exc:
            detail = self._scrub(str(exc) or type(exc).__name__)
            message = f"cannot connect to {self.url}: {detail}"
            raise TransientError(message, kind="unreachable") from None
        except httpx.TransportError as exc:
            raise TransientError(
                self._scrub(f"{type(exc).__name__}: {exc}"), kind="network"
            ) from None
        except httpx.RequestError as exc:  # an undecodable body, too many redirects
            message = self._scrub(f"{type(exc).__name__}: {exc}")
            raise TransientError(message, kind="invalid_response") from None

    def _scrub(self, message: str) -> str:
        """`message` fit to show and store: it may quote the request's headers or URL."""
        return self.redact(message)

    def _wait(self, state: RetryCallState) -> float:
        """What the server asked for (Retry-After), else full-jitter exponential backoff."""
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        asked: float | None = error.retry_after if isinstance(error, TransientError) else None
        if asked is not None:
            return asked  # never sooner; a wait past the deadline stops the retries instead
        # An overloaded server (429 with no Retry-After) is already spared by the lower
        # concurrency; a short wait keeps it busy. Errors get the longer backoff.
        rate_limited = isinstance(error, TransientError) and error.kind == "rate_limited"
        base = OVERLOAD_BACKOFF_BASE if rate_limited else BACKOFF_BASE
        ceiling = min(BACKOFF_CAP, base * 2.0 ** (state.attempt_number - 1))
        return self._jitter() * ceiling

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1


class _NothingListens(stop_base):
    """Stop soon where no server has answered yet and connections fail: a server that is
    not running will not start within the retries."""

    def __init__(self, embedder: HttpEmbedder) -> None:
        self.embedder = embedder

    def __call__(self, state: RetryCallState) -> bool:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        refused = isinstance(error, TransientError) and error.kind == "unreachable"
        fresh = not self.embedder._answered
        return refused and fresh and state.attempt_number >= _CONNECT_ATTEMPTS


def _client(
    settings: HttpSettings, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    # Only encodings `body` can inflate a bounded piece at a time (httpx would ask for br and
    # zstd too where their packages are installed).
    headers = {"User-Agent": "ragidx", "Accept-Encoding": "gzip, deflate"}
    auth = None
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key}"
    elif settings.login:
        auth = httpx.BasicAuth(*settings.login)
    return httpx.AsyncClient(
        base_url=settings.base_url.rstrip("/"),
        headers=headers,
        auth=auth,
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
        limits=httpx.Limits(
            max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
        ),
        transport=transport,
    )


def answer_limit(inputs: int, dims: int) -> int:
    """The most bytes an answer of `inputs` vectors of `dims` numbers (0: not known yet) can
    need, generously, and never more than `ANSWER_CAP`."""
    need = inputs * ((dims or _WIDEST) * _BYTES_PER_NUMBER + _BYTES_PER_INPUT) + _ANSWER_MARGIN
    return min(need, ANSWER_CAP)


class AnswerTooLarge(Exception):
    """An answer that passed its limit: `str` says by how much it is known to."""


async def body(response: httpx.Response, limit: int) -> httpx.Response:
    """`response` (opened with `stream`) with its body read, inflated as Content-Encoding
    says, and counted as it comes: a success past `limit` bytes raises `AnswerTooLarge` at once
    (before a byte where Content-Length says so); an error's body is cut at `ERROR_BODY`.
    Raises `httpx.DecodingError` for a body that does not inflate."""
    success = 200 <= response.status_code < 300
    cut = limit if success else ERROR_BODY
    declared = response.headers.get("content-length", "")
    if success and declared.isdigit() and int(declared) > limit:
        raise AnswerTooLarge(f"{int(declared):,} bytes announced, at most {limit:,} expected")
    try:
        whole = response.content  # built whole (httpx.MockTransport): read and inflated
    except httpx.ResponseNotRead:
        pass
    else:
        if success and len(whole) > limit:
            raise AnswerTooLarge(f"over {limit:,} bytes")
        return response if len(whole) <= cut else _holding(response, whole[:cut])
    inflate = _Inflate(response.headers.get("content-encoding", ""))
    parts: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        for piece in inflate.feed(raw):
            size += len(piece)
            if size > cut:
                if success:
                    raise AnswerTooLarge(f"over {limit:,} bytes")
                parts.append(piece[: len(piece) - (size - cut)])
                return _holding(response, b"".join(parts))
            parts.append(piece)
    parts.append(inflate.flush())
    return _holding(response, b"".join(parts))


def _holding(response: httpx.Response, content: bytes) -> httpx.Response:
    """A response like `response`, holding `content` as its (inflated) body."""
    dropped = {"content-encoding", "content-length", "transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
    extensions = {
        k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")
    }
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=content,
        request=response.request,
        extensions=extensions,
    )


class _Inflate:
    """Content-Encoding undone at most `_STEP` bytes at a time, so a bomb is counted (and
    stopped) as it grows, never inflated whole in one call as httpx's decoders do."""

    def __init__(self, encoding: str) -> None:
        codings = [c.strip().lower() for c in encoding.split(",")]
        codings = [c for c in codings if c not in ("", "identity")]
        self._deflate = codings == ["deflate"]
        self._fresh = True
        self._z: Any = None  # zlib's decompressor type is private
        if codings in (["gzip"], ["x-gzip"]):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._deflate:
            self._z = zlib.decompressobj(zlib.MAX_WBITS)
        elif codings:
            raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._z is None:
            yield data
            return
        if self._fresh and self._deflate and data:
            # Some servers send deflate without zlib's header, as httpx's decoder allows.
            self._fresh = False
            try:
                zlib.decompressobj(zlib.MAX_WBITS).decompress(data[:2])
            except zlib.error:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        while data and not self._z.eof:
            try:
                piece = self._z.decompress(data, _STEP)
            except zlib.error as exc:
                raise httpx.DecodingError(f"the answer does not inflate: {exc}") from None
            data = self._z.unconsumed_tail
            if piece:
                yield piece

    def flush(self) -> bytes:
        if self._z is None:
            return b""
        try:
            return bytes(self._z.flush())
        except zlib.error as exc:
            raise httpx.DecodingError(f"the answer does not inflate: {exc}") from None


def classify(response: httpx.Response) -> TransientError | RejectedError | FatalEmbedError:
    """The error an HTTP failure stands for: retry it, give up on the input, or stop the run."""
    status = response.status_code
    message = f"HTTP {status}: {_error_message(response)}"
    lowered = message.lower()
    should = response.headers.get("x-should-retry")
    if 300 <= status < 400:
        return _redirected(response)
    if status in (401, 403):
        return FatalEmbedError(
            message, kind="auth", hint="check the API key (RAGIDX_API_KEY) and the base URL"
        )
    if status == 429 and "insufficient_quota" in lowered:
        return FatalEmbedError(message, kind="quota", hint="the account has no quota left")
    wait = retry_after(response.headers)
    if should == "false":  # the server says a retry would not help, nor would splitting
        return RejectedError(message, kind="server_error")
    if status == 500 and "input is too large" in lowered:  # llama.cpp: not transient
        return RejectedError(message, kind="too_large")
    if status == 429:
        return TransientError(message, kind="rate_limited", retry_after=wait)
    if should == "true" or status in (408, 409) or status >= 500:
        kind = "timeout" if status == 408 else "server_error"
        return TransientError(message, kind=kind, retry_after=wait)
    if status == 413 or any(w in lowered for w in _SIZE_WORDS):
        return RejectedError(message, kind="too_large")
    if any(w in lowered for w in _LENGTH_WORDS):
        return RejectedError(message, kind="too_long")
    return RejectedError(message, kind="rejected_input")


def _redirected(response: httpx.Response) -> FatalEmbedError:
    """A redirect stops the run: following it would send the key to another address, and
    every request would be redirected alike."""
    status = response.status_code
    where = _redirect_target(response)
    message = f"HTTP {status}: the server redirects to {where or 'an address it does not give'}"
    hint = (
        "set --base-url (RAGIDX_BASE_URL) to the server that answers (where it redirects, if"
        " you trust that address); ragidx follows no redirect, so the API key goes only to"
        " the address you give"
    )
    return FatalEmbedError(message, kind="redirect", hint=hint)


def _redirect_target(response: httpx.Response) -> str | None:
    """Where a redirect points, made absolute, without user:password, query or fragment (a
    signed address can hold a token there); None when it does not say."""
    location = response.headers.get("location", "").strip()
    if not location:
        return None
    try:
        url = httpx.URL(location)
        with contextlib.suppress(RuntimeError):  # a response built without its request
            url = response.request.url.join(url)
        url = url.copy_with(username=None, password=None, query=None, fragment=None)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "an address that is not a URL"
    shown = str(url)
    return shown if len(shown) <= 200 else shown[:200] + "..."


_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?"
)


def parse_duration(text: str | None) -> float | None:
    """Seconds in an OpenAI reset header: `1s`, `6m0s`, `250ms`, `1h2m3.5s`; None if unreadable."""
    if not text:
        return None
    m = _DURATION.fullmatch(text.strip())
    if not m or not any(m.groups()):
        return None
    h, mins, sec, ms = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + sec + ms / 1000


def _reading(headers: httpx.Headers, unit: str) -> Reading | None:
    """One budget from OpenAI's `x-ratelimit-{limit,remaining,reset}-{unit}`; None if absent."""
    remaining = _number(headers.get(f"x-ratelimit-remaining-{unit}"))
    reset = parse_duration(headers.get(f"x-ratelimit-reset-{unit}"))
    if remaining is None or reset is None:
        return None
    return Reading(remaining, reset, _number(headers.get(f"x-ratelimit-limit-{unit}")))


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds the server asked to wait: `retry-after-ms`, else `Retry-After` (seconds or date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error.get(k)) for k in ("message", "code", "type") if error.get(k)]
            return "; ".join(parts) or str(error)[:300]
        text = str(error)
        if "error_type" in body:
            text += f"; {body['error_type']}"
        return text[:300]
    return str(body)[:300]
