"""`tei`: POST {base}/embed (Hugging Face text-embeddings-inference)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Vectors, matrix
from .http import HttpEmbedder

__all__ = ["TEIEmbedder"]


class TEIEmbedder(HttpEmbedder):
    provider = "tei"
    path = "/embed"
    default_base_url = "http://localhost:8080"
    default_model = "tei"
    default_max_inputs = 32  # TEI's max_client_batch_size
    default_max_tokens = 16_384  # TEI's max_batch_tokens

    def payload(self, texts: Sequence[str]) -> dict[str, Any]:
        return {"inputs": list(texts), "truncate": False}

    def parse(self, body: Any, count: int) -> Vectors:
        return matrix(body)
