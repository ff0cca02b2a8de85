"""The small pure pieces: batcher, hash embedder, vector validation, the public surface."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys

import numpy as np
import pytest
from helpers import fts_query

import ragidx
from ragidx.embed import HashEmbedder, validate_vectors
from ragidx.errors import InvalidVectors
from ragidx.pipeline.batcher import Batcher


def test_batcher_bounds_inputs_and_tokens_in_order() -> None:
    batcher: Batcher[int] = Batcher(max_inputs=3, max_tokens=10)
    out = []
    for ref, tokens in enumerate([4, 4, 4, 1, 1, 1, 1, 20, 2]):
        if (batch := batcher.add(f"t{ref}", tokens, ref)) is not None:
            out.append(batch)
    if (batch := batcher.flush()) is not None:
        out.append(batch)
    assert [b.refs for b in out] == [[0, 1], [2, 3, 4], [5, 6], [7], [8]]
    assert all(len(b) <= 3 for b in out)
    assert all(b.tokens <= 10 for b in out if len(b) > 1)  # an oversize input travels alone
    assert [t for b in out for t in b.texts] == [f"t{i}" for i in range(9)]
    assert batcher.flush() is None


def test_hash_embedder_is_normalised_and_lexical() -> None:
    embedder = HashEmbedder(dims=1024)
    texts = [
        "retry failed jobs with exponential backoff",
        "exponential backoff between retries of a failed job",
        "the cron scheduler fires at midnight in the configured timezone",
    ]
    vectors = asyncio.run(embedder.embed(texts))
    assert vectors.shape == (3, 1024) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.3 > sims[0, 2]


def test_hash_embedder_is_stable_across_processes() -> None:
    code = (
        "import asyncio; from ragidx.embed import HashEmbedder;"
        "v = asyncio.run(HashEmbedder(256).embed(['Stable vectors, même texte 日本'])); "
        "print(v.tobytes().hex())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_hash_embedder_gives_featureless_text_a_direction() -> None:
    # Only stop words, only symbols: a vector of zeros would be refused as an answer.
    vectors = asyncio.run(HashEmbedder(64).embed(["the and of", "!!!", "?"]))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert len({v.tobytes() for v in vectors}) == 3


def test_validate_vectors_rejects_wrong_shapes_and_nan() -> None:
    good = np.ones((2, 4), dtype=np.float32)
    assert validate_vectors(good, 2, 4) is good
    with pytest.raises(InvalidVectors, match="expected 3 vectors, got 2"):
        validate_vectors(good, 3, 4)
    with pytest.raises(InvalidVectors, match="8 dimensions"):
        validate_vectors(good, 2, 8)
    bad = good.copy()
    bad[1, 2] = np.nan
    with pytest.raises(InvalidVectors, match="NaN"):
        validate_vectors(bad, 2, 4)
    with pytest.raises(InvalidVectors):
        validate_vectors([[1.0]], 1, 1)


def test_fts_query_quotes_terms() -> None:
    assert fts_query('TW-E4031 "quoted" NEAR x*') == '"tw-e4031" OR "quoted" OR "near" OR "x"'
    # OR and NOT are function words, left out beside other terms, quoted where alone.
    assert fts_query("TW-E4031 OR NOT x") == '"tw-e4031" OR "x"'
    assert fts_query("OR NOT") == '"or" OR "not"'
    assert fts_query("compute_backoff_delay") == '"compute_backoff_delay"'
    assert fts_query("   !!! ") is None


def test_public_surface_matches_all() -> None:
    # Names load lazily: each one in __all__ resolves, and nothing else public does.
    for name in ragidx.__all__:
        assert getattr(ragidx, name) is not None, name
    public = {
        name
        for name, value in vars(ragidx).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public - {"annotations", "importlib", "TYPE_CHECKING", "Any"} <= set(ragidx.__all__)
    assert set(dir(ragidx)) >= set(ragidx.__all__)
    with pytest.raises(AttributeError):
        _ = ragidx.no_such_name
    assert inspect.iscoroutinefunction(ragidx.query.search)  # the function shadows its module
