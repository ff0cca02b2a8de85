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
body too, which is read as it streams (`ragidx.embed.answer`). What an error means, and how
long it asks to wait, is `ragidx.embed.refusal`'s to say.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable, Sequence
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
from ragidx.embed.answer import ANSWER_CAP, ERROR_BODY, AnswerTooLarge, answer_limit, body
from ragidx.embed.base import Auth, EmbedStats, Probe, Server, Vectors, unit_rows, validate_vectors
from ragidx.embed.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)
from ragidx.embed.limiter import AdaptiveConcurrency, RateLimiter, Unit
from ragidx.embed.options import HttpOptions
from ragidx.embed.refusal import classify, parse_duration, retry_after
from ragidx.embed.refusal import reading as reading_of
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

# Tries before a server that has never answered is taken for not running.
_CONNECT_ATTEMPTS = 3
_UNREACHABLE = (
    "is the server running and listening there? Check --base-url (RAGIDX_BASE_URL),"
    " or run `ragidx doctor`"
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
    """Base of the HTTP providers: subclasses give `path`, `payload` and `parse`.

    Over 250 lines: one request's retries, pacing and answer checks share its state (the
    limiter, the adaptive sizes, whether the server ever answered). The pacing by the
    server's budget headers (`_heed`, `_calibrate`) could go beside the limiter next."""

    provider: str = "http"
    path: ClassVar[str] = "/"
    default_base_url: ClassVar[str] = "http://localhost"
    default_model: ClassVar[str] = "default"
    default_max_inputs: ClassVar[int] = 32
    takes_tokens: ClassVar[bool] = True
    """`embed(texts, tokens)` takes each text's count, the one the run cut its chunks by."""
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

    async def embed(self, texts: Sequence[str], tokens: Sequence[int] | None = None) -> Vectors:
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
                    return await self._attempt(texts, tokens)
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

    async def _attempt(self, texts: Sequence[str], tokens: Sequence[int] | None) -> Vectors:
        # The caller's count where it gives one (the one chunks were cut by), else estimated.
        work = sum(tokens) if tokens is not None else sum(map(estimate_tokens, texts))
        cost = work if self.limiter.tokens is not None else 0
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
            self._heed(response, cost or work, texts)
            if response.status_code >= 400:
                raise self._refused(response)
            self.adaptive.answered(turn, work, full=len(texts) >= self.max_inputs)
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
            reading = reading_of(headers, unit)
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
