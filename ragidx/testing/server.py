"""A real embedding server for tests and benchmarks, speaking the OpenAI, Ollama and TEI APIs.

Vectors are deterministic, computed from each input's text (`expected_vector`), so a test can
check that every stored vector belongs to its chunk. `Faults` makes the server misbehave in
the ways real servers do: latency, errors with or without Retry-After, reset connections,
hangs, malformed JSON, missing or non-finite or wrongly sized vectors, shuffled (but legal)
order, a cap on inputs per request, a poison input, over-long inputs and a required API key;
it can compute one request at a time, slowly, as a model on a CPU does (`serial_rate`); and it
can attack its client: an answer of any size, a gzip bomb, a body trickled past any timeout.

    python -m ragidx.testing.server --port 8765 --latency 0.02 --fail-first 3
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import json
import random
import socket
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import numpy as np

__all__ = ["ANSWER_FAULTS", "EmbeddingServer", "Faults", "expected_vector", "serve", "serving"]

ANSWER_FAULTS = ("500", "malformed", "short", "nan", "wrong_dims", "ragged", "shuffled")
"""What `Faults.at` can do to one answer: an HTTP 500, a cut-off body, one vector missing, a
NaN, every vector one number too long, one vector one number short, order shuffled (legal)."""

ROUTES = {
    "/v1/embeddings": "openai",
    "/embeddings": "openai",
    "/api/embed": "ollama",
    "/embed": "tei",
}


def expected_vector(text: str, dims: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The vector the server returns for `text`: seeded by its hash, L2-normalised."""
    seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dims)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


@dataclass(kw_only=True)
class Faults:
    """How the server misbehaves. `*_first` faults hit the first N requests, then stop."""

    dims: int = 64
    latency: float = 0.0
    fail_first: int = 0
    fail_status: int = 500
    retry_after: float | None = None
    reset_first: int = 0
    hang_first: int = 0
    hang_seconds: float = 30.0
    """How long a hung request waits before the server drops it (the server stopping ends
    the wait), and how long a trickled body takes."""
    malformed_first: int = 0
    short_first: int = 0
    nan_first: int = 0
    wrong_dims_first: int = 0
    at: dict[int, str] = field(default_factory=dict)
    """A fault for chosen requests by number, 1 the first: `{1: "ragged", 9: "nan"}`. One of
    ANSWER_FAULTS; on the command line `--at 1=ragged,9=nan`."""
    shuffle: bool = False
    max_inputs: int | None = None
    poison: str | None = None
    max_chars: int | None = None
    api_key: str | None = None
    refuse_base64: bool = False
    insufficient_quota: bool = False
    rpm: float | None = None
    """A request budget enforced over one-second windows: 429 + Retry-After past it."""
    tpm: float | None = None
    """A token budget likewise, counting about four characters a token."""
    budget_window: float | None = None
    """Enforce `rpm` and `tpm` over sliding windows this many seconds long instead (600 rpm
    and 5 s: 50 requests per 5 s), with reset headers in OpenAI's meaning: the time until the
    window's whole usage has expired. Without it, one-second buckets whose reset is the time
    until the bucket is full again, a per-minute limit header over a second's worth."""
    capacity: int | None = None
    """Requests served at once; more are refused as TEI does (429 overloaded, no Retry-After)."""
    too_large_chars: int | None = None
    """Longer inputs are refused as llama.cpp's server does: HTTP 500, "input is too large"."""
    scale: float = 1.0
    """Vectors come back this long, not unit length (some llama.cpp builds)."""
    empty_zeros: bool = False
    """An empty or blank input gets a vector of zeros (Ollama), not a 400."""
    usage_chars: bool = False
    """`usage.prompt_tokens` counts characters, not tokens (Infinity)."""
    serial_rate: float | None = None
    """Inputs a second, computed one request at a time with the rest queued in arrival
    order, as a model on a CPU does. A client that gave up still costs its turn: the server
    computes what it was sent (and counts it in `Counters.inputs`) whoever waits for it."""
    max_input_length: int | None = None
    """What TEI's `GET /info` says the model reads, in tokens (no such key when None)."""
    huge_answer: int = 0
    """Answer with this many bytes (announced in Content-Length): one vector of that many
    numbers, valid JSON, streamed out so the server itself holds 1 MiB at a time."""
    gzip_bomb: int = 0
    """Answer with a gzip body that inflates to this many bytes (valid JSON padded with
    spaces: about a thousandth of that on the wire), compressed once when the server starts."""
    hostile_first: int | None = None
    """Only the first N requests get `huge_answer` or `gzip_bomb`; every request when None."""
    chunked: bool = False
    """`huge_answer` and `gzip_bomb` go out chunked, with no Content-Length to refuse them by:
    only counting the body as it comes (inflated) can stop them."""
    trickle_first: int = 0
    """The first N answers send their headers at once, then the body a byte at a time,
    spread over `hang_seconds`."""

    redirect: str | None = None
    """Every POST is answered `redirect_status` with this Location (a moved server, a proxy)."""
    redirect_status: int = 307
    zero_vectors: int = 0
    """The first N answers hold a vector of zeros (the first of each), valid JSON otherwise."""

    echo_auth: bool = False
    """Every error message repeats the request's URL and Authorization header, a Basic one
    decoded too, as some gateways and proxies do: a test that the client shows none of it."""


class _Serial:
    """One request computed at a time, the others waiting their turn in arrival order."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._turns = threading.Condition()
        self._next = 0  # the ticket of the next request to arrive
        self._serving = 0

    def compute(self, inputs: int) -> None:
        with self._turns:
            ticket = self._next
            self._next += 1
            self._turns.wait_for(lambda: self._serving == ticket)
        try:
            time.sleep(inputs / self.rate)
        finally:
            with self._turns:
                self._serving += 1
                self._turns.notify_all()


class _Budget:
    """A second's worth of a per-minute budget, full at the start, refilled continuously."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60
        self.level = self.rate
        self.stamp = time.monotonic()

    def wait(self, cost: float) -> float:
        now = time.monotonic()
        self.level = min(self.rate, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(cost, self.rate)  # a request above a second's worth goes into debt
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, cost: float) -> None:
        self.level -= cost

    def headers(self) -> tuple[float, float, float]:
        """Limit (a minute's), remaining, and seconds until the bucket is full again."""
        return self.rate * 60, self.level, (self.rate - self.level) / self.rate


class _Window:
    """`limit` units per sliding window of `seconds`: what was spent comes back `seconds` later."""

    def __init__(self, limit: float, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.spent: deque[tuple[float, float]] = deque()  # (when, units), oldest first

    def wait(self, cost: float) -> float:
        now = self._expire()
        # A request above the whole window's worth goes when the window is empty.
        over = sum(units for _, units in self.spent) + min(cost, self.limit) - self.limit
        wait = 0.0
        for when, units in self.spent:
            if over <= 0:
                break
            over -= units
            wait = when + self.seconds - now
        return wait

    def take(self, cost: float) -> None:
        self.spent.append((time.monotonic(), cost))

    def headers(self) -> tuple[float, float, float]:
        """Limit, remaining, and seconds until the window's whole usage has expired."""
        now = self._expire()
        used = sum(units for _, units in self.spent)
        reset = self.spent[-1][0] + self.seconds - now if self.spent else 0.0
        return self.limit, self.limit - used, reset

    def _expire(self) -> float:
        now = time.monotonic()
        while self.spent and self.spent[0][0] + self.seconds <= now:
            self.spent.popleft()
        return now


def _duration(seconds: float) -> str:
    """As OpenAI writes a reset: `250ms`, `4.382s`."""
    return f"{int(seconds * 1000)}ms" if seconds < 1 else f"{seconds:.3f}s"


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


@dataclass
class Counters:
    requests: int = 0
    inputs: int = 0
    tokens: int = 0
    blank: int = 0
    """Inputs that were empty or only whitespace."""
    statuses: dict[int, int] = field(default_factory=dict)
    authorizations: set[str] = field(default_factory=set)
    """The Authorization headers requests came with ("" for none)."""


class EmbeddingServer(ThreadingHTTPServer):
    """The server; `serve` runs one for the duration of a block.

    `server_close` stops it at once: a handler in a fault (a hang, a trickled body) ends when
    the server stops, not when the fault would have, connections a client left open are shut,
    and handlers still computing an answer get `STOP_GRACE` seconds to count it (they are
    daemon threads, so one still running then delays nothing).
    """

    daemon_threads = True
    block_on_close = False  # server_close joins the handlers itself, after waking them
    STOP_GRACE = 10.0

    def __init__(self, faults: Faults, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.faults = faults
        self.counters = Counters()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        """Set when the server stops: a fault that waits (hang, trickle) ends on it."""
        self._handlers: dict[threading.Thread, socket.socket] = {}
        window = faults.budget_window
        self.budgets: dict[str, _Budget | _Window] = {
            unit: _Window(per_minute / 60 * window, window) if window else _Budget(per_minute)
            for unit, per_minute in (("requests", faults.rpm), ("tokens", faults.tpm))
            if per_minute
        }
        self.busy = 0
        self.serial = _Serial(faults.serial_rate) if faults.serial_rate else None
        self.bomb = _gzip_bomb(faults.gzip_bomb) if faults.gzip_bomb else b""

    def spend(self, tokens: int) -> tuple[float, dict[str, str]]:
        """Take a request and its tokens from the budgets: the wait asked of the client
        (0 if it may go) and OpenAI's x-ratelimit headers."""
        cost = {"requests": 1, "tokens": tokens}
        with self.lock:
            wait = max(b.wait(cost[unit]) for unit, b in self.budgets.items())
            if not wait:
                for unit, budget in self.budgets.items():
                    budget.take(cost[unit])
            headers: dict[str, str] = {}
            for unit, budget in self.budgets.items():
                limit, remaining, reset = budget.headers()
                headers[f"x-ratelimit-limit-{unit}"] = f"{limit:g}"
                headers[f"x-ratelimit-remaining-{unit}"] = str(max(int(remaining), 0))
                headers[f"x-ratelimit-reset-{unit}"] = _duration(reset)
        return wait, headers

    def process_request(self, request: Any, client_address: Any) -> None:
        # As ThreadingMixIn does, but keeping each handler's connection so that stopping
        # can shut it; the handler forgets itself when it ends.
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self.lock:
            self._handlers[thread] = request
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self._handlers.pop(threading.current_thread(), None)

    def server_close(self) -> None:
        """Close the listening socket, wake the handlers waiting in a fault, shut every open
        connection (a handler reading one sees it end, one writing gets a broken pipe) and
        wait at most `STOP_GRACE` seconds for the handlers to end."""
        self.stopping.set()
        super().server_close()
        with self.lock:
            handlers = dict(self._handlers)
        for connection in handlers.values():
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + self.STOP_GRACE
        for thread in handlers:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (killed, timed out) is part of the tests, not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, status: int, texts: list[str] | None = None) -> None:
        with self.lock:
            self.counters.statuses[status] = self.counters.statuses.get(status, 0) + 1
            self.counters.inputs += len(texts or [])
            self.counters.tokens += sum(_tokens(t) for t in texts or [])
            self.counters.blank += sum(not t.strip() for t in texts or [])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmbeddingServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        limit = self.server.faults.max_input_length
        if self.path == "/info" and limit is not None:
            # TEI's answer, the fields ragidx may read.
            self._send(200, {"model_id": "test-model", "max_input_length": limit})
            return
        self._send(200, {"status": "ok"})

    def do_POST(self) -> None:
        api = ROUTES.get(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        with self.server.lock:
            self.server.counters.requests += 1
            n = self.server.counters.requests
        self.number = n
        faults = self.server.faults
        with self.server.lock:
            self.server.counters.authorizations.add(self.headers.get("authorization", ""))
        if api is None:
            self._send(404, {"error": f"no route {self.path}"})
            return
        if faults.capacity is not None:
            with self.server.lock:
                full = self.server.busy >= faults.capacity
                self.server.busy += 0 if full else 1
            if full:
                self._send(429, {"error": "Model is overloaded", "error_type": "overloaded"})
                return
            try:
                self._serve(api, raw, n, faults)
            finally:
                with self.server.lock:
                    self.server.busy -= 1
            return
        self._serve(api, raw, n, faults)

    def _serve(self, api: str, raw: bytes, n: int, faults: Faults) -> None:
        if faults.latency:
            time.sleep(faults.latency)
        if faults.redirect is not None:
            location = {"location": faults.redirect}
            self._send(faults.redirect_status, {"error": "moved"}, location)
            return
        if faults.api_key and self.headers.get("authorization") != f"Bearer {faults.api_key}":
            self._send(
                401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
            )
            return
        if n <= faults.reset_first:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.close_connection = True
            self.connection.close()
            return
        if n <= faults.hang_first:
            self.server.stopping.wait(faults.hang_seconds)
            self.close_connection = True
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": "body is not JSON"})
            return
        texts = body.get("input", body.get("inputs"))
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            self._send(400, {"error": "input must be a non-empty list of strings"})
            return
        budget_headers: dict[str, str] = {}
        if self.server.budgets:
            wait, budget_headers = self.server.spend(sum(_tokens(t) for t in texts))
            if wait:
                budget_headers["retry-after"] = f"{wait:.3f}"
                error = {
                    "message": "Rate limit reached for requests",
                    "code": "rate_limit_exceeded",
                }
                self._send(429, {"error": error}, budget_headers)
                return
        refusal = self._refusal(faults, n, texts, body)
        if refusal is not None:
            status, payload, headers = refusal
            self._send(status, payload, headers)
            return
        self.extra_headers = budget_headers
        if self.server.serial is not None:
            self.server.serial.compute(len(texts))  # whether or not the client still waits
        self._answer(api, faults, n, texts, body)

    def _refusal(
        self, f: Faults, n: int, texts: list[str], body: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]] | None:
        headers = {"retry-after": f"{f.retry_after:g}"} if f.retry_after is not None else {}
        if f.insufficient_quota:
            error = {"message": "You exceeded your current quota", "code": "insufficient_quota"}
            return 429, {"error": error}, {}
        if f.at.get(n) == "500":
            return 500, {"error": {"message": "injected 500"}}, {}
        if n <= f.fail_first:
            if f.fail_status == 429 and f.retry_after is None:  # TEI's overload: no Retry-After
                return 429, {"error": "Model is overloaded", "error_type": "overloaded"}, {}
            return f.fail_status, {"error": {"message": f"injected {f.fail_status}"}}, headers
        if f.refuse_base64 and body.get("encoding_format") == "base64":
            return 400, {"error": {"message": "encoding_format base64 is not supported"}}, {}
        if f.max_inputs is not None and len(texts) > f.max_inputs:
            message = f"batch size {len(texts)} > max_client_batch_size {f.max_inputs}"
            return 422, {"error": message, "error_type": "Validation"}, {}
        if f.poison is not None and any(f.poison in t for t in texts):
            return 400, {"error": {"message": "input rejected by the content filter"}}, {}
        if f.max_chars is not None and any(len(t) > f.max_chars for t in texts):
            message = f"This model's maximum context length is {f.max_chars} tokens"
            return 400, {"error": {"message": message}}, {}
        if f.too_large_chars is not None and any(len(t) > f.too_large_chars for t in texts):
            message = "input is too large to process. increase the physical batch size"
            return 500, {"error": {"code": 500, "message": message, "type": "server_error"}}, {}
        if any(not t for t in texts) and not f.empty_zeros:
            return 400, {"error": {"message": "empty input"}}, {}
        return None

    def _answer(self, api: str, f: Faults, n: int, texts: list[str], body: dict[str, Any]) -> None:
        fault = f.at.get(n)
        if (f.huge_answer or f.gzip_bomb) and (f.hostile_first is None or n <= f.hostile_first):
            self.server.count(200, texts)
            if f.gzip_bomb:
                bomb = self.server.bomb
                self._send_pieces(len(bomb), [bomb], {"content-encoding": "gzip"})
            else:
                self._send_pieces(f.huge_answer, _huge_body(f.huge_answer))
            return
        if n <= f.malformed_first or fault == "malformed":
            self._send_raw(200, b'{"data": [{"index": 0, "embedding": [0.1,')
            return
        dims = f.dims + (1 if n <= f.wrong_dims_first or fault == "wrong_dims" else 0)
        vectors = [
            np.zeros(dims, np.float32)
            if f.empty_zeros and not t.strip()
            else expected_vector(t, dims) * np.float32(f.scale)
            for t in texts
        ]
        if n <= f.zero_vectors:
            vectors[0] = np.zeros(dims, np.float32)
        if n <= f.nan_first or fault == "nan":
            vectors[0] = vectors[0].copy()
            vectors[0][0] = np.nan
        if fault == "ragged":
            vectors[0] = vectors[0][:-1]
        if n <= f.short_first or fault == "short":
            vectors = vectors[:-1]
        self.server.count(200, texts)
        if api == "openai":
            b64 = body.get("encoding_format") == "base64"
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                    if b64
                    else [float(x) for x in v],
                }
                for i, v in enumerate(vectors)
            ]
            if f.shuffle or fault == "shuffled":
                random.Random(n).shuffle(data)
            count = len if f.usage_chars else _tokens
            usage = {"prompt_tokens": sum(count(t) for t in texts)}
            self._send(
                200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
            )
        elif api == "ollama":
            self._send(
                200, {"model": body.get("model"), "embeddings": [v.tolist() for v in vectors]}
            )
        else:
            self._send(200, [v.tolist() for v in vectors])

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        if status != 200:
            self.server.count(status)
            if self.server.faults.echo_auth:
                payload = self._echoed(payload)
        self._send_raw(status, json.dumps(payload).encode(), headers)

    def _echoed(self, payload: Any) -> Any:
        auth = self.headers.get("authorization", "")
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() == "basic":
            with contextlib.suppress(ValueError):
                auth += " = " + base64.b64decode(credential).decode()
        echo = f"(POST http://{self.headers.get('host')}{self.path}; Authorization: {auth})"
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            return {**payload, "error": {**error, "message": f"{error.get('message')} {echo}"}}
        if isinstance(error, str):
            return {**payload, "error": f"{error} {echo}"}
        return payload

    def _send_pieces(
        self, size: int, pieces: Iterable[bytes], headers: dict[str, str] | None = None
    ) -> None:
        chunked = self.server.faults.chunked
        self.send_response(200)
        self.send_header("content-type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if chunked:
            self.send_header("transfer-encoding", "chunked")
        else:
            self.send_header("content-length", str(size))
        self.end_headers()
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        extra = getattr(self, "extra_headers", {}) if status == 200 else {}
        for name, value in {**extra, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if status == 200 and 0 < getattr(self, "number", 0) <= self.server.faults.trickle_first:
            pause = self.server.faults.hang_seconds / max(len(data), 1)
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                if self.server.stopping.wait(pause):
                    return
            return
        self.wfile.write(data)


_HUGE_HEAD = b'{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1'
_HUGE_TAIL = b"]}]}"
_PIECE = 1 << 20


def _huge_body(size: int, filler: bytes = b", 0.125") -> Iterator[bytes]:
    """`size` bytes of valid JSON, one vector of about size/7 numbers (or spaces, with
    filler b" "), in pieces of 1 MiB."""
    middle = size - len(_HUGE_HEAD) - len(_HUGE_TAIL)
    if middle < 0:
        raise ValueError(f"an answer of {size} bytes is too small to be hostile")
    yield _HUGE_HEAD
    whole, rest = divmod(middle, len(filler))
    piece = filler * (_PIECE // len(filler))
    while whole > 0:
        take = min(whole, len(piece) // len(filler))
        yield piece[: take * len(filler)]
        whole -= take
    yield b" " * rest + _HUGE_TAIL


@functools.lru_cache(maxsize=2)
def _gzip_bomb(size: int) -> bytes:
    """A gzip stream that inflates to `size` bytes of JSON padded with spaces."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [packer.compress(piece) for piece in _huge_body(size, filler=b" ")]
    return b"".join([*out, packer.flush()])


_Server = TypeVar("_Server", bound=EmbeddingServer)


@contextlib.contextmanager
def serving(server: _Server) -> Iterator[_Server]:
    """Run `server` (an `EmbeddingServer`, or a subclass that records, say) in a background
    thread for the duration of the block; closed after it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def serve(faults: Faults | None = None, port: int = 0) -> Iterator[EmbeddingServer]:
    """Run a server on 127.0.0.1 in a background thread for the duration of the block."""
    with serving(EmbeddingServer(faults or Faults(), port)) as server:
        yield server


def _answer_faults(text: str) -> dict[int, str]:
    """`1=ragged,9=nan` -> {1: "ragged", 9: "nan"}."""
    faults = {int(n): fault for n, _, fault in (item.partition("=") for item in text.split(","))}
    unknown = set(faults.values()) - set(ANSWER_FAULTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault {sorted(unknown)}; {ANSWER_FAULTS}")
    return faults


def main() -> None:
    parser = argparse.ArgumentParser(description="ragidx's fault-injecting embedding server")
    parser.add_argument("--port", type=int, default=0)
    for f in fields(Faults):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool",):
            parser.add_argument(flag, action="store_true")
        elif f.name == "at":
            parser.add_argument(flag, type=_answer_faults, default=None)
        else:
            kind = float if "float" in str(f.type) else int if "int" in str(f.type) else str
            parser.add_argument(flag, type=kind, default=None)
    args = vars(parser.parse_args())
    port = args.pop("port")
    faults = Faults(**{k: v for k, v in args.items() if v is not None and v is not False})
    with serve(faults, port) as server:
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
