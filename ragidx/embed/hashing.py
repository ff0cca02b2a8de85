"""`hash`: an offline, deterministic lexical embedder (feature hashing).

Each text becomes a bag of features: lower-cased words (English stop words dropped), pairs
of adjacent words, and character 4-grams of each word padded with spaces (so `retry` and
`retries` share most of their features). A word's count is damped to `1 + ln(count)` and
weighs its own feature and its 4-grams; a pair's count likewise. Each feature is scaled by
its kind's weight and added with a sign of its own at an index taken from a CRC-32 of the
feature (stable across processes, unlike `hash()`). The vector is then
L2-normalised, so a dot product is a cosine. 1,024 dimensions keep collisions rare for the
few hundred distinct features of a chunk. A text of only stop words keeps them, and one with
no word at all (`---`) is taken by its runs of symbols: no vector is all zeros.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ragidx.chunk.tokens import space_cjk
from ragidx.embed.base import Offline, Vectors

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["DEFAULT_HASH_DIMS", "HashEmbedder"]

DEFAULT_HASH_DIMS = 1024
MODEL_NAME = "ragidx-hash-v1"
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_WEIGHTS = {"w": 1.0, "b": 0.7, "c": 0.25}
# Words whose features are kept; about 800 bytes each, so this bounds the cache near 25 MB.
_CACHE_LIMIT = 32_768
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


class HashEmbedder(Offline):
    """Feature-hashing embedder; needs no server and gives the same vector every time."""

    provider = "hash"
    max_inputs = 256
    max_tokens = 1_000_000

    def __init__(self, dims: int = DEFAULT_HASH_DIMS) -> None:
        if dims < 64:
            raise ValueError(f"hash embedder needs at least 64 dimensions, got {dims}")
        self.dims = dims
        self.model = MODEL_NAME
        self._words: dict[str, tuple[list[int], list[float], int]] = {}

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if sum(map(len, texts)) < _INLINE_CHARS:
            return self.embed_sync(texts)
        return await asyncio.to_thread(self.embed_sync, texts)

    async def aclose(self) -> None:
        self._words.clear()

    def offload(self) -> tuple[Callable[..., Vectors], tuple[Any, ...]] | None:
        cls = type(self)
        if cls.embed is not HashEmbedder.embed or cls.embed_sync is not HashEmbedder.embed_sync:
            return None  # a subclass that embeds in its own way: only it knows how
        return vectors, (self.dims,)

    def featureless(self, text: str) -> bool:
        """Whether `text` has no word but stop words: its vector comes from the fallback."""
        return all(w in STOP_WORDS for w in _WORD.findall(space_cjk(text.lower())))

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        # Word features go into flat lists, a word's group (itself and its 4-grams) sharing
        # one damping factor; pairs are hashed and counted in numpy; bincount sums per row.
        slots: list[int] = []
        weights: list[float] = []
        damps: list[float] = []
        sizes: list[int] = []
        per_row: list[int] = []
        sequence: list[int] = []
        words_per_row: list[int] = []
        for text in texts:
            before = len(slots)
            lowered = space_cjk(text.lower())  # CJK characters become words; pairs follow
            found = _WORD.findall(lowered)
            words = [w for w in found if w not in STOP_WORDS] or found or _symbols(lowered)
            ids: dict[str, int] = {}  # this text's own: the cache may be cleared meanwhile
            for word, n in Counter(words).items():
                word_slots, word_weights, ids[word] = self._word_features(word)
                slots += word_slots
                weights += word_weights
                damps.append(_damp(n))
                sizes.append(len(word_slots))
            sequence += [ids[w] for w in words]
            words_per_row.append(len(words))
            per_row.append(len(slots) - before)
        n = len(texts)
        import numpy as np  # here, not at the top: see ragidx.embed.base

        index = np.asarray(slots, dtype=np.int64)
        index += np.repeat(np.arange(n, dtype=np.int64) * self.dims, per_row)
        scale = np.repeat(np.asarray(damps), sizes) * np.asarray(weights)
        pair_index, pair_scale = self._pairs(sequence, words_per_row)
        flat = np.bincount(
            np.concatenate([index, pair_index]),
            weights=np.concatenate([scale, pair_scale]),
            minlength=n * self.dims,
        )
        out = flat.reshape(n, self.dims).astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def _pairs(
        self, sequence: list[int], words_per_row: list[int]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Flat indices and weights of adjacent word pairs, counted per row and damped."""
        import numpy as np

        ids = np.asarray(sequence, dtype=np.uint64)
        rows = np.repeat(np.arange(len(words_per_row), dtype=np.uint64), words_per_row)
        same_row = rows[1:] == rows[:-1]
        # A pair's hash mixes its words' CRCs: no string to build and hash again.
        mixed = ((ids[:-1] * np.uint64(0x9E3779B1)) ^ ids[1:]) & np.uint64(0xFFFFFFFF)
        keys, counts = np.unique(
            (rows[1:][same_row] << np.uint64(32)) | mixed[same_row], return_counts=True
        )
        h = keys & np.uint64(0xFFFFFFFF)
        slot = (h >> np.uint64(1)) % np.uint64(self.dims)
        index = ((keys >> np.uint64(32)) * np.uint64(self.dims) + slot).astype(np.int64)
        sign = np.where(h & np.uint64(1), -1.0, 1.0)
        return index, sign * _WEIGHTS["b"] * (1.0 + np.log(counts))

    def _word_features(self, word: str) -> tuple[list[int], list[float], int]:
        """A word's own slot and its character 4-grams' slots, with signed weights, and the
        word's CRC-32 for pairs; cached."""
        cached = self._words.get(word)
        if cached is None:
            if len(self._words) >= _CACHE_LIMIT:
                self._words.clear()
            padded = f" {word} "
            grams = [padded[i : i + 4] for i in range(max(len(padded) - 3, 1))]
            feats = [("w" + word, _WEIGHTS["w"])] + [("c" + g, _WEIGHTS["c"]) for g in grams]
            slots, weights = [], []
            for feature, weight in feats:
                slot, sign = self._slot(feature)
                slots.append(slot)
                weights.append(sign * weight)
            cached = self._words[word] = (slots, weights, zlib.crc32(word.encode("utf-8")))
        return cached

    def _slot(self, feature: str) -> tuple[int, float]:
        """The feature's index and sign, from a CRC-32 that is the same in every process."""
        h = zlib.crc32(feature.encode("utf-8"))
        return (h >> 1) % self.dims, -1.0 if h & 1 else 1.0


def vectors(dims: int, texts: Sequence[str]) -> Vectors:
    """`HashEmbedder(dims)`'s vectors of `texts`, by one embedder a process, whose cache of
    word features lasts: what a worker process runs for a run's `HashEmbedder`."""
    return _embedder(dims).embed_sync(texts)


@functools.cache
def _embedder(dims: int) -> HashEmbedder:
    return HashEmbedder(dims)


def _symbols(text: str) -> list[str]:
    """The words of a text that has none (`---`, `* * *`): its runs of other characters, so
    that no text has a vector of zeros, which has no direction to search by."""
    return text.split() or [text]


def _damp(count: int) -> float:
    """Sublinear term weight: a feature seen `count` times weighs `1 + ln(count)`."""
    return 1.0 + math.log(count)
