"""Chunks from many files into batches bounded by input count and token sum. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Batch", "Batcher", "merge", "slices"]

T = TypeVar("T")


@dataclass(slots=True)
class Batch(Generic[T]):
    """Inputs to embed in one request, each with the reference its vector goes back to."""

    texts: list[str] = field(default_factory=list)
    refs: list[T] = field(default_factory=list)
    tokens: int = 0

    def __len__(self) -> int:
        return len(self.texts)


class Batcher(Generic[T]):
    """Packs inputs in arrival order; `add` hands back a batch when the next input won't fit."""

    def __init__(self, max_inputs: int, max_tokens: int) -> None:
        if max_inputs < 1 or max_tokens < 1:
            raise ValueError("a batch must hold at least one input and one token")
        self.max_inputs = max_inputs
        self.max_tokens = max_tokens
        self._current: Batch[T] = Batch()

    def add(self, text: str, tokens: int, ref: T) -> Batch[T] | None:
        """Add one input; returns the batch that was closed to make room, if any.

        An input larger than `max_tokens` on its own travels alone: the embedder decides.
        """
        full = None
        cur = self._current
        if cur.texts and (len(cur) >= self.max_inputs or cur.tokens + tokens > self.max_tokens):
            full = self.flush()
            cur = self._current
        cur.texts.append(text)
        cur.refs.append(ref)
        cur.tokens += tokens
        if len(cur) >= self.max_inputs and full is None:
            return self.flush()
        return full

    def flush(self) -> Batch[T] | None:
        """Close the current batch, if it holds anything."""
        if not self._current.texts:
            return None
        batch, self._current = self._current, Batch()
        return batch

    @property
    def pending(self) -> int:
        return len(self._current)


def merge(first: Batch[T], second: Batch[T]) -> Batch[T]:
    """One batch of both, in order."""
    return Batch(first.texts + second.texts, first.refs + second.refs, first.tokens + second.tokens)


def slices(tokens: list[int], budget: int) -> list[tuple[int, int]]:
    """Cut inputs of these sizes, in order, into runs of at most `budget` tokens: `(start,
    end)` pairs. An input larger than the budget on its own makes a run of one."""
    runs: list[tuple[int, int]] = []
    start, held = 0, 0
    for i, size in enumerate(tokens):
        if i > start and held + size > budget:
            runs.append((start, i))
            start, held = i, 0
        held += size
    if tokens:
        runs.append((start, len(tokens)))
    return runs
