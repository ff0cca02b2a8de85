"""Memory and time stay bounded whatever a server sends (issue 14, section 3).

End to end, `ragidx index` runs as a child process (started from bench/launch.py, so its
peak RSS is its own) against the test server on 127.0.0.1 attacking it with an answer of
50 MB or a gzip bomb of 200 MB, announced in Content-Length or sent chunked; an answer whose
body trickles past `--timeout`. Through `httpx.MockTransport`, the pieces: legitimate
compressed answers, error bodies, the cap on any answer, TEI's `/info`.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from helpers import RAGIDX, ROOT, Result, write

from ragidx.embed import OpenAIEmbedder, TEIEmbedder
from ragidx.embed.http import ANSWER_CAP, ERROR_BODY, HttpEmbedder, HttpSettings
from ragidx.errors import RejectedError, TransientError
from ragidx.testing.server import EmbeddingServer, Faults, expected_vector, serve

DIMS = 64
FILES = {f"docs/f{i}.md": f"# Note {i}\n\nAbout topic {i} and more.\n" for i in range(6)}
MB = 1_000_000
PEAK_RSS = 300 * 2**20  # the target; a run that reads what it is sent peaks at 0.5-1 GB
SLACK = 60.0  # seconds on top of what a run may take: this box is small and shared


def index(work: Path, server: EmbeddingServer, *args: str) -> tuple[Result, float, int]:
    """`ragidx index docs` in a child process: its result, wall seconds and peak RSS."""
    report = work / "launch.txt"
    cmd = [
        *RAGIDX, "index", "docs", "--db", "idx.db", "--json", "--no-progress",
        "--provider", "openai", "--base-url", server.url + "/v1", "--model", "m", *args,
    ]  # fmt: skip
    launcher = [sys.executable, "-S", str(ROOT / "bench" / "launch.py"), str(report)]
    done = subprocess.run(
        [*launcher, *cmd], cwd=work, capture_output=True, text=True, timeout=300, check=False
    )
    wall, _, rss = report.read_text().split()
    return Result(done.returncode, done.stdout, done.stderr), float(wall), int(rss) * 1024


@pytest.fixture
def docs(work: Path) -> Path:
    write(work, FILES)
    return work


ATTACKS = {
    "huge": Faults(dims=DIMS, huge_answer=50 * MB),
    "huge-chunked": Faults(dims=DIMS, huge_answer=50 * MB, chunked=True),
    "bomb": Faults(dims=DIMS, gzip_bomb=200 * MB),
    "bomb-chunked": Faults(dims=DIMS, gzip_bomb=200 * MB, chunked=True),
}


@pytest.mark.parametrize("faults", ATTACKS.values(), ids=ATTACKS.keys())
def test_an_answer_larger_than_the_batch_can_need_fails_its_files(
    docs: Path, faults: Faults
) -> None:
    with serve(faults) as server:
        result, wall, rss = index(
            docs, server, "--dimensions", str(DIMS), "--timeout", "5", "--max-retries", "2"
        )
        requests = server.counters.requests
    assert result.exit_code == 1, result.stderr
    reasons = {
        r["reason"].startswith("invalid_response: answer too large")
        for r in result.files().values()
    }
    assert reasons == {True}, result.stdout
    assert len(result.files()) == len(FILES)
    assert requests == 2  # one batch, retried once only (--max-retries 2 would allow two)
    assert rss < PEAK_RSS
    assert wall < 5 + 1.5 + SLACK  # one timeout at most, and full-jitter backoff at most


@pytest.mark.parametrize(
    "faults",
    [
        Faults(dims=DIMS, huge_answer=50 * MB, hostile_first=1),
        Faults(dims=DIMS, gzip_bomb=200 * MB, hostile_first=1, chunked=True),
    ],
    ids=["huge", "bomb"],
)
def test_one_huge_answer_is_retried(docs: Path, faults: Faults) -> None:
    with serve(faults) as server:
        result, _, rss = index(docs, server, "--dimensions", str(DIMS))
        requests = server.counters.requests
    assert result.exit_code == 0, result.stderr
    assert result.summary()["indexed"] == len(FILES)
    assert requests == 2
    assert rss < PEAK_RSS


def test_before_the_width_is_known_a_huge_answer_ends_the_run(docs: Path) -> None:
    # With no --dimensions, the first answers are asked for to learn the width (and bound
    # by the widest vectors a model has): a server that cannot give one ends the run.
    with serve(Faults(dims=DIMS, gzip_bomb=200 * MB, chunked=True)) as server:
        result, _, rss = index(docs, server, "--max-retries", "1")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "answer too large: over " in result.stderr
    assert rss < PEAK_RSS


def test_the_timeout_covers_the_body(docs: Path) -> None:
    # Headers at once, then a byte every few ms, for 6 s: no read waits long, but the
    # answer as a whole does not come within --timeout 1.
    write(docs, {"docs/f0.md": "# Only\n\nOne file.\n"})
    for extra in list(FILES)[1:]:
        (docs / extra).unlink()
    with serve(Faults(dims=DIMS, trickle_first=100, hang_seconds=6)) as server:
        result, wall, _ = index(
            docs, server, "--dimensions", str(DIMS), "--timeout", "1", "--max-retries", "1"
        )
    assert result.exit_code == 1, result.stderr
    (record,) = result.files().values()
    assert record["reason"] == "timeout: no answer within 1 s"
    assert wall < 2 * 1 + 0.5 + SLACK


# -- the pieces, through httpx.MockTransport --------------------------------------------------


def _embedder(handler: Any, cls: type[HttpEmbedder] = OpenAIEmbedder, **settings: Any) -> Any:
    async def no_wait(seconds: float) -> None:
        pass

    options = {"base_url": "http://server/v1", "model": "m", "max_retries": 0, **settings}
    return cls(HttpSettings(**options), transport=httpx.MockTransport(handler), sleep=no_wait)


def _embed(handler: Any, texts: list[str], **settings: Any) -> Any:
    """`texts` embedded through a fresh embedder over `handler` (its errors raised)."""

    async def go() -> Any:
        embedder = _embedder(handler, **settings)
        try:
            return await embedder.embed(texts)
        finally:
            await embedder.aclose()

    return asyncio.run(go())


class Endless(httpx.AsyncByteStream):
    """A body that never ends (short of `most` bytes, so that a client that reads it all
    fails its test instead of hanging it), counting what was taken of it."""

    def __init__(self, piece: bytes = b" " * 65536, most: int = ANSWER_CAP + 2**20) -> None:
        self.piece = piece
        self.most = most
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.taken < self.most:
            self.taken += len(self.piece)
            yield self.piece
            await asyncio.sleep(0)  # as a socket would, so that a timeout can fire


def _answer(texts: list[str]) -> bytes:
    data = [
        {"index": i, "embedding": base64.b64encode(expected_vector(t, DIMS).tobytes()).decode()}
        for i, t in enumerate(texts)
    ]
    return json.dumps({"data": data}).encode()


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


ENCODINGS = {
    "identity": lambda b: b,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw deflate": _raw_deflate,
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_compressed_answer_is_read(encoding: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        content = ENCODINGS[encoding](_answer(json.loads(request.content)["input"]))
        name = encoding.split()[-1]
        stream = httpx.ByteStream(content)  # not read ahead: as from a socket
        return httpx.Response(200, headers={"content-encoding": name}, stream=stream)

    vectors = _embed(handler, ["a", "bb"])
    assert np.allclose(vectors, [expected_vector(t, DIMS) for t in ("a", "bb")], atol=1e-6)


def test_an_unsupported_encoding_is_an_invalid_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        stream = httpx.ByteStream(b"\x00" * 100)
        return httpx.Response(200, headers={"content-encoding": "br"}, stream=stream)

    with pytest.raises(TransientError) as caught:
        _embed(handler, ["a"])
    error = caught.value
    assert error.kind == "invalid_response" and "Content-Encoding 'br'" in error.message


def test_an_error_body_is_read_only_to_its_first_few_kb() -> None:
    body = Endless(b'{"error": {"message": "' + b"x" * 65536, most=4 * 2**20)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, stream=body)

    with pytest.raises(TransientError) as caught:
        _embed(handler, ["a"], timeout=30)
    error = caught.value
    assert error.kind == "server_error" and error.message.startswith("HTTP 500: ")
    assert len(error.message) < 400
    assert body.taken <= ERROR_BODY + 2 * 65536


def test_past_the_cap_a_batch_is_split_not_retried() -> None:
    # Vectors so wide that what two inputs can need passes the cap: the cap refuses the
    # answer, and a smaller batch may be answered within it.
    body = Endless()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body)

    with pytest.raises(RejectedError) as caught:
        _embed(handler, ["a", "b"], dims=2_000_000, timeout=60)
    error = caught.value
    assert error.kind == "too_large"
    assert error.message == f"answer too large: over {ANSWER_CAP:,} bytes for 2 inputs"
    assert ANSWER_CAP < body.taken <= ANSWER_CAP + 2 * 65536


def test_tei_info_is_read_only_to_its_first_kb() -> None:
    body = Endless(b'{"max_input_length": 512, "pad": "' + b"x" * 65536, most=4 * 2**20)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/info"
        return httpx.Response(200, stream=body)

    async def go() -> int | None:
        embedder = _embedder(handler, TEIEmbedder, base_url="http://server")
        try:
            limit: int | None = await embedder.input_limit()
            return limit
        finally:
            await embedder.aclose()

    assert asyncio.run(go()) is None
    assert body.taken <= 4 * 65536
