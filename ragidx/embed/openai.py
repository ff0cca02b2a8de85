"""`openai`: POST {base}/embeddings, for OpenAI and every server that copies its API
(vLLM, llama.cpp server, Ollama's /v1, LM Studio, Infinity, LiteLLM)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from ragidx.embed.base import Vectors, matrix
from ragidx.embed.http import HttpEmbedder
from ragidx.errors import RejectedError

__all__ = ["OpenAIEmbedder"]


class OpenAIEmbedder(HttpEmbedder):
    provider = "openai"
    path = "/embeddings"
    default_base_url = "https://api.openai.com/v1"
    default_model = "text-embedding-3-small"
    default_max_inputs = 2048
    default_max_tokens = 300_000
    # Little-endian float32 in base64 is a quarter of the JSON floats, and exact.
    base64 = True

    def payload(self, texts: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": list(texts)}
        if self.base64:
            body["encoding_format"] = "base64"
        if self.settings.dims:
            body["dimensions"] = self.settings.dims
        return body

    def parse(self, body: Any, count: int) -> Vectors:
        rows: list[Any] = [None] * count
        for item in body["data"]:
            i = item["index"]  # order by index, never by position
            if not isinstance(i, int) or not 0 <= i < count or rows[i] is not None:
                raise ValueError(f"index {i!r} is out of range or repeated")
            vector = item["embedding"]
            rows[i] = (
                np.frombuffer(base64.b64decode(vector), dtype="<f4")
                if isinstance(vector, str)
                else np.asarray(vector, dtype=np.float32)
            )
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            raise ValueError(
                f"{len(missing)} of {count} vectors missing (first index {missing[0]})"
            )
        return matrix(rows)

    def usage(self, body: Any) -> int | None:
        usage = body.get("usage") if isinstance(body, dict) else None
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        return tokens if isinstance(tokens, int) and tokens > 0 else None

    def _fall_back(self, response: httpx.Response) -> tuple[str, str] | None:
        if response.status_code in (400, 422) and "encoding_format" in response.text.lower():
            self.base64 = False  # as indexing does: ask for floats instead
            return ("encoding", "the server sends floats, not base64")
        return None

    async def _attempt(self, texts: Sequence[str], tokens: Sequence[int] | None) -> Vectors:
        try:
            return await super()._attempt(texts, tokens)
        except RejectedError as exc:
            if not (self.base64 and "encoding_format" in exc.message.lower()):
                raise
            self.base64 = False  # this server only speaks floats
            return await super()._attempt(texts, tokens)
