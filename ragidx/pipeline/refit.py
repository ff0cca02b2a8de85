"""Chunks a model refuses as too long: split them smaller, cut them short, or give up.

`--on-long-chunk split` (the default) re-chunks the refused chunk's text at half its token
budget and embeds the pieces, which replace it in the file (offsets and lines stay exact);
`truncate` keeps the chunk and embeds ever shorter prefixes of it until the model accepts
one (`export --vectors` shows the `input` sent); `fail` fails the file as `too_long`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeGuard

from ragidx.chunk.chunker import chunk_text
from ragidx.chunk.tokens import counter
from ragidx.config import DEFAULT_CHUNK, MIN_CHUNK_TOKENS, ChunkConfig, LongChunkPolicy
from ragidx.embed.base import Vectors
from ragidx.errors import EmbedError, RejectedError
from ragidx.models import Chunk

__all__ = ["LONG_KINDS", "Answer", "EmbedMany", "LongChunkPolicy", "Refitted", "refit", "too_long"]

LONG_KINDS = frozenset({"too_long", "too_large"})
Answer: TypeAlias = "Vectors | EmbedError"
"""What came back for one input: its vector (one row), or why there is none."""
Refitted: TypeAlias = "list[tuple[Chunk, Vectors | None]]"
"""A refused chunk's pieces, each with its vector (None: the cache holds it already)."""
EmbedMany: TypeAlias = "Callable[[list[str]], Awaitable[list[Vectors | EmbedError | None]]]"
"""Embeds texts: an answer for each, or None for one the cache holds."""


def too_long(result: object) -> TypeGuard[RejectedError]:
    """Refused as longer than the model takes."""
    return isinstance(result, RejectedError) and result.kind in LONG_KINDS


async def refit(
    chunk: Chunk,
    error: EmbedError,
    policy: LongChunkPolicy,
    embed: EmbedMany,
    chunking: ChunkConfig = DEFAULT_CHUNK,
) -> Refitted | EmbedError:
    """The chunk's replacement pieces with their vectors, or the error that stands; pieces
    are cut and counted as `chunking` cuts and counts (its token counter)."""
    if policy is LongChunkPolicy.TRUNCATE:
        return await _truncate(chunk, error, embed, counter(chunking.tokenizer).count)
    if policy is LongChunkPolicy.SPLIT:
        return await _split(chunk, error, embed, chunking)
    return error


def _prefix(chunk: Chunk) -> str:
    """The heading path and blank line in front of the text in the embedder's input."""
    return chunk.input[: len(chunk.input) - len(chunk.text)]


async def _truncate(
    chunk: Chunk, error: EmbedError, embed: EmbedMany, count: Callable[[str], int]
) -> Refitted | EmbedError:
    prefix, body = _prefix(chunk), chunk.text
    while len(body) > 1:
        body = body[: len(body) // 2].rstrip()
        (result,) = await embed([prefix + body])
        if not isinstance(result, EmbedError):
            text = prefix + body
            return [(dataclasses.replace(chunk, input=text, tokens=count(text)), result)]
        if not too_long(result):
            return result
    return error


async def _split(
    chunk: Chunk, error: EmbedError, embed: EmbedMany, chunking: ChunkConfig
) -> Refitted | EmbedError:
    result: Vectors | EmbedError | Refitted | None
    budget = max(chunk.tokens // 2, MIN_CHUNK_TOKENS)
    halves = dataclasses.replace(chunking, chunk_tokens=budget, chunk_overlap=0)
    pieces = chunk_text(chunk.text, "text", halves)
    count = counter(chunking.tokenizer).count
    if len(pieces) < 2:
        return error  # nothing left to split: the model cannot take even this much
    prefix = _prefix(chunk)
    subs = [
        dataclasses.replace(
            chunk,
            text=p.text,
            input=prefix + p.text,
            char_start=chunk.char_start + p.char_start,
            char_end=chunk.char_start + p.char_end,
            line_start=chunk.line_start + p.line_start - 1,
            line_end=chunk.line_start + p.line_end - 1,
            tokens=count(prefix + p.text),
        )
        for p in pieces
    ]
    out: Refitted = []
    for sub, result in zip(subs, await embed([s.input for s in subs]), strict=True):
        if too_long(result):
            result = await _split(sub, result, embed, chunking)
        if isinstance(result, EmbedError):
            return result
        out.extend(result if isinstance(result, list) else [(sub, result)])
    return out
