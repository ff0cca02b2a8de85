"""`hash`: an offline, deterministic lexical embedder (feature hashing).

Each text becomes a bag of features: lower-cased words (English stop words dropped), pairs
of adjacent words, and character 4-grams of each word padded with spaces (so `retry` and
`retries` share most of their features). Each feature's count is damped to `1 + ln(count)`,
scaled by its kind's weight, and added with a sign of its own at an index taken from a
CRC-32 of the feature (stable across processes, unlike `hash()`). The vector is then
L2-normalised, so a dot product is a cosine. 1,024 dimensions keep collisions rare for the
few hundred distinct features of a chunk.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

from .base import Vectors

__all__ = ["DEFAULT_HASH_DIMS", "HashEmbedder"]

DEFAULT_HASH_DIMS = 1024
MODEL_NAME = "ragidx-hash-v1"
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_WEIGHTS = {"w": 1.0, "b": 0.7, "c": 0.25}
_CACHE_LIMIT = 500_000
# Texts shorter than this are embedded on the event loop: a thread hop costs more.
_INLINE_CHARS = 20_000
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "while",
        "who",
        "will",
        "with",
        "you",
        "your",
    ]
)


class HashEmbedder:
    """Feature-hashing embedder; needs no server and gives the same vector every time."""

    provider = "hash"
    max_inputs = 256
    max_tokens = 1_000_000

    def __init__(self, dims: int = DEFAULT_HASH_DIMS) -> None:
        if dims < 64:
            raise ValueError(f"hash embedder needs at least 64 dimensions, got {dims}")
        self.dims = dims
        self.model = MODEL_NAME
        self._slots: dict[str, int] = {}

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if sum(map(len, texts)) < _INLINE_CHARS:
            return self.embed_sync(texts)
        return await asyncio.to_thread(self.embed_sync, texts)

    async def aclose(self) -> None:
        self._slots.clear()

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            self._embed_into(out[row], text)
        return out

    def _embed_into(self, row: Vectors, text: str) -> None:
        features = _features(text)
        if not features:
            return
        slots = np.fromiter((self._slot(f) for f in features), dtype=np.int64, count=len(features))
        weights = np.fromiter(
            (_WEIGHTS[f[0]] * (1.0 + math.log(n)) for f, n in features.items()),
            dtype=np.float32,
            count=len(features),
        )
        signs = np.where(slots & 1, -1.0, 1.0).astype(np.float32)
        np.add.at(row, slots >> 1, weights * signs)
        norm = float(np.linalg.norm(row))
        if norm > 0:
            row /= norm

    def _slot(self, feature: str) -> int:
        """The feature's index (upper bits) and sign (lowest bit), cached."""
        slot = self._slots.get(feature)
        if slot is None:
            if len(self._slots) >= _CACHE_LIMIT:
                self._slots.clear()
            h = zlib.crc32(feature.encode("utf-8"))
            slot = self._slots[feature] = ((h >> 1) % self.dims) << 1 | (h & 1)
        return slot


def _features(text: str) -> Counter[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
    feats: Counter[str] = Counter("w" + w for w in words)
    feats.update("b" + a + " " + b for a, b in itertools.pairwise(words))
    for word, n in Counter(words).items():
        padded = f" {word} "
        for i in range(max(len(padded) - 3, 1)):
            feats["c" + padded[i : i + 4]] += n
    return feats
