"""An answer's body, read as it streams, with memory and time bounded whatever a server
sends: inflated a bounded piece at a time (a gzip bomb is stopped as it grows), up to what
the batch can need (`answer_limit`), an error's body to its first few KB (`ERROR_BODY`)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import httpx

__all__ = ["ANSWER_CAP", "ERROR_BODY", "AnswerTooLarge", "answer_limit", "body"]

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
