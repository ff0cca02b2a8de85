"""`tei`: POST {base}/embed (Hugging Face text-embeddings-inference)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from ragidx.embed.answer import AnswerTooLarge, body
from ragidx.embed.base import Vectors, matrix
from ragidx.embed.http import HttpEmbedder

__all__ = ["TEIEmbedder"]

INFO_LIMIT = 64 * 1024
"""What is read of `GET /info` (TEI's is about 1 KB)."""


class TEIEmbedder(HttpEmbedder):
    provider = "tei"
    path = "/embed"
    default_base_url = "http://localhost:8080"
    default_model = "tei"
    default_max_inputs = 32  # TEI's max_client_batch_size
    default_max_tokens = 16_384  # TEI's max_batch_tokens

    async def input_limit(self) -> int | None:
        """`max_input_length` from `GET /info`; None if the server does not answer it."""
        try:
            async with asyncio.timeout(min(self.settings.timeout, 10.0)):
                async with self._client.stream("GET", "/info") as streamed:
                    response = await body(streamed, INFO_LIMIT)
            info = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, TimeoutError, ValueError, AnswerTooLarge):
            return None
        limit = info.get("max_input_length") if isinstance(info, dict) else None
        return limit if isinstance(limit, int) and limit > 0 else None

    def payload(self, texts: Sequence[str]) -> dict[str, Any]:
        return {"inputs": list(texts), "truncate": False}

    def parse(self, body: Any, count: int) -> Vectors:
        return matrix(body)
