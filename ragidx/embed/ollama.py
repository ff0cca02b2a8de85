"""`ollama`: POST {base}/api/embed with a list of inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragidx.embed.base import Vectors, matrix
from ragidx.embed.http import HttpEmbedder

__all__ = ["OllamaEmbedder"]


class OllamaEmbedder(HttpEmbedder):
    provider = "ollama"
    path = "/api/embed"
    default_base_url = "http://localhost:11434"
    default_model = "nomic-embed-text"
    default_max_inputs = 32
    default_max_tokens = 16_384

    def payload(self, texts: Sequence[str]) -> dict[str, Any]:
        # truncate false: an over-long input is refused (and split), not silently cut.
        return {"model": self.model, "input": list(texts), "truncate": False}

    def parse(self, body: Any, count: int) -> Vectors:
        return matrix(body["embeddings"])
