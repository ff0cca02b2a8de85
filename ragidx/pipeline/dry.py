"""A dry run: the whole pipeline, through the usual seams, with nothing embedded or written.

`CountingEmbedder` stands for the real embedder: it counts the requests a real run would
send and answers each input with a placeholder vector, without asking any server.
`DryStore` is the index opened read-only (`PRAGMA query_only`, or an empty index in memory
where there is none yet, or for `--reset`): reads go through to it, writes are let go, and
the vectors a real run would have cached are remembered, so that a dry run reuses what a
real one would. The stages do not know they are in a dry run.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import cast

from ragidx.config import IndexConfig
from ragidx.embed import Embedder, Offline, Vectors
from ragidx.models import RunSummary
from ragidx.pipeline.estimate import estimate
from ragidx.pipeline.prepare import manifest_dims
from ragidx.store import Embeddings, SqliteStore, Write

__all__ = ["CountingEmbedder", "DryStore", "prepare_dry", "summarise_dry"]


class CountingEmbedder(Offline):
    """The vector space of `inner` (provider, model, dims, limits); counts requests and
    answers placeholders (the unit vector along the first axis), without asking anyone."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.dims = inner.dims
        self.max_inputs = inner.max_inputs
        self.max_tokens = inner.max_tokens
        self.requests = 0
        self.inputs = 0

    async def embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        self.requests += 1
        self.inputs += len(texts)
        # Unknown dims (no index names this model yet): one column, which any width check
        # of a space not yet bound accepts.
        vectors = np.zeros((len(texts), self.dims or 1), dtype=np.float32)
        vectors[:, 0] = 1.0
        return vectors

    async def aclose(self) -> None:
        """Nothing to release; `inner` is its owner's to close."""


class DryStore(SqliteStore):
    """The index, read through and never written."""

    _remembered: _Remembered

    @classmethod
    def for_run(cls, config: IndexConfig) -> DryStore:
        """The index at `config.db_path` read-only, or an empty one in memory where there is
        none, or the run resets it (a dry run creates nothing)."""
        blank = config.reset or not os.path.exists(config.db_path)
        return cls._opened(None if blank else config.db_path, _Remembered())

    def reader(self, *, blank: bool = False) -> DryStore:
        """Another connection to the same index, for reads in worker threads; it knows what
        this one has remembered. (In memory: another empty index, as for a real run.)"""
        blank = blank or str(self.path) == ":memory:"
        return self._opened(None if blank else self.path, self._remembered)

    @classmethod
    def _opened(cls, path: Path | None, remembered: _Remembered) -> DryStore:
        """The index at `path` as it is (no upgrade), or an empty one in memory for None."""
        if path is None:
            store = cls.open(Path(":memory:"))
        else:
            store = cls.open(path, create=False, upgrade=False)
        dry = cast(DryStore, store)
        dry._remembered = remembered
        return dry

    def cached(self, keys: list[bytes]) -> set[bytes]:
        return super().cached(keys) | self._remembered.which(keys)

    def commit(self, writes: list[Write], run_id: int) -> None:
        for write in writes:
            if isinstance(write, Embeddings):
                self._remembered.add(write.keys)

    def claim_manifest(
        self,
        provider: str,
        model: str,
        dims: int,
        settings: Mapping[str, int | str],
        *,
        binding: Mapping[str, str] | None = None,
    ) -> None:
        self.check_manifest(provider, model, dims, binding)

    def begin_run(self, roots: Iterable[str], *, worker: str = "", shard: str | None = None) -> int:
        return 0

    def heartbeat(self, run_id: int, in_flight: int) -> None:
        pass

    def finish_run(
        self,
        run_id: int,
        status: str,
        summary: dict[str, object],
        *,
        on_build: Callable[[int], None] | None = None,
    ) -> None:
        pass

    def reset(self, *, defer: bool = False) -> None:
        pass  # the dry run of a reset reads an empty index in memory (`for_run`)

    def complete_reset(self, run_id: int) -> None:
        pass

    def drop_staged(self) -> int:
        return 0

    def stamp_dirs(self, rows_per_commit: int = 20_000) -> int:
        return 0

    def checkpoint(self) -> None:
        pass


class _Remembered:
    """Keys of the vectors a real run would have cached; written by the committing thread,
    read by the readers' threads."""

    def __init__(self) -> None:
        self._keys: set[bytes] = set()
        self._lock = threading.Lock()

    def add(self, keys: list[bytes]) -> None:
        with self._lock:
            self._keys.update(keys)

    def which(self, keys: list[bytes]) -> set[bytes]:
        with self._lock:
            return self._keys.intersection(keys)


async def prepare_dry(store: DryStore, embedder: Embedder) -> CountingEmbedder:
    """The counting embedder for `embedder`'s vector space, held to the index's as a real
    run would be. Its dims come from the index where it names this model; never from the
    server (0 where no index does: the space is not bound)."""
    counting = CountingEmbedder(embedder)
    if not counting.dims:
        counting.dims = await manifest_dims(store, embedder) or 0
    binding = embedder.binding
    await asyncio.to_thread(
        store.check_manifest, counting.provider, counting.model, counting.dims, binding
    )
    return counting


def summarise_dry(summary: RunSummary, counting: CountingEmbedder, config: IndexConfig) -> None:
    """What a real run would send and cost; placeholders are no vectors embedded."""
    summary.dry_run = True
    summary.embedded = 0
    summary.estimate = estimate(counting.requests, summary.sent_tokens, config.budget)
