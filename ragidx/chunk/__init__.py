"""Stage 3, chunk: a `Document` in, `Chunk`s within a token budget out; and counting tokens."""

from __future__ import annotations

from ragidx.chunk.chunker import Chunker, chunk_document, chunk_text
from ragidx.chunk.tokens import TokenCounter, counter, estimate_tokens

__all__ = ["Chunker", "TokenCounter", "chunk_document", "chunk_text", "counter", "estimate_tokens"]
