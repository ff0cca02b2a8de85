"""The dry run's seams: an embedder that only counts, a store that only reads."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ragidx.config import IndexConfig
from ragidx.embed import HashEmbedder, validate_vectors
from ragidx.errors import ManifestMismatch
from ragidx.pipeline.dry import CountingEmbedder, DryStore, prepare_dry
from ragidx.store import Embeddings, SqliteStore


class Refuses(HashEmbedder):
    async def embed(self, texts: object) -> np.ndarray:  # type: ignore[override]
        raise AssertionError("a dry run asks no embedder")


def test_the_counting_embedder_counts_and_answers_placeholders() -> None:
    counting = CountingEmbedder(Refuses(dims=64))
    vectors = asyncio.run(counting.embed(["a", "b", "c"]))
    assert counting.requests == 1 and counting.inputs == 3
    assert validate_vectors(vectors, 3, 64).shape == (3, 64)
    counting.dims = 0  # a space not bound yet: any width will do
    assert validate_vectors(asyncio.run(counting.embed(["d"])), 1, 0).shape == (1, 1)
    assert counting.requests == 2


def test_the_dry_store_reads_through_remembers_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "idx.db"
    SqliteStore.open(db).close()
    before = db.read_bytes()
    store = DryStore.for_run(IndexConfig(db_path=db))
    reader = store.reader()
    try:
        assert store.begin_run(["docs"]) == 0
        key = b"k" * 16
        assert reader.cached([key]) == set()
        store.commit([Embeddings([key], np.ones((1, 4), dtype=np.float32))], 0)
        assert reader.cached([key, b"x" * 16]) == {key}  # as a real run's cache would
        store.claim_manifest("hash", "m", 4, {"chunk_tokens": 1})
        store.finish_run(0, "completed", {})
        store.stamp_dirs()
        store.drop_staged()
        store.checkpoint()
    finally:
        reader.close()
        store.close()
    assert db.read_bytes() == before


def test_a_dry_run_creates_no_index_and_holds_to_the_one_there(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    store = DryStore.for_run(IndexConfig(db_path=missing))
    store.close()
    assert not missing.exists()

    db = tmp_path / "idx.db"
    SqliteStore.open(db).close()
    conn = sqlite3.connect(db)
    rows = [("provider", "hash"), ("model", HashEmbedder(64).model), ("dims", "64")]
    with conn:
        conn.executemany("INSERT INTO manifest (key, value) VALUES (?, ?)", rows)
    conn.close()
    dry = DryStore.for_run(IndexConfig(db_path=db))
    try:
        counting = asyncio.run(prepare_dry(dry, HashEmbedder(dims=64)))
        assert counting.dims == 64
        with pytest.raises(ManifestMismatch):
            asyncio.run(prepare_dry(dry, HashEmbedder(dims=128)))
    finally:
        dry.close()
