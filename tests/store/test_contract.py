"""The `Store` contract, through the public API only, on every backend (`store` runs each
test on SQLite and on Postgres): what a commit leaves, the tree queries in byte order,
stamps, the embedding cache, the manifest guard, deferred resets, staging and held chunks,
gc's counts, stats, export, and both kinds of search. The two stores cannot drift apart
while these pass on both."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragidx.errors import ManifestMismatch
from ragidx.models import Chunk, FileStatus
from ragidx.query.search import query_terms
from ragidx.store import Embeddings, FileWrite, SqliteStore, Staged, Store, embedding_key
from ragidx.store.base import Write
from ragidx.store.lock import WriterLock
from ragidx.testing.server import expected_vector

DIMS = 16
SPACE = ("test", "m", DIMS)


def _key(text: str) -> bytes:
    return embedding_key(*SPACE, text)


def _chunks(texts: Sequence[str], start: int = 0) -> list[Chunk]:
    return [
        Chunk(start + i, t, t, 0, len(t), 1, 1, ("Top", "Sub"), len(t.split()))
        for i, t in enumerate(texts)
    ]


def _vectors(texts: Sequence[str]) -> Embeddings:
    unique = list(dict.fromkeys(texts))
    return Embeddings(
        [_key(t) for t in unique], np.stack([expected_vector(t, DIMS) for t in unique])
    )


def _indexed(path: str, texts: Sequence[str], *, size: int = 10, mtime: int = 1) -> list[Write]:
    """The writes of a file indexed with one chunk per text: its vectors, then the file."""
    chunks = _chunks(texts)
    write = FileWrite(
        FileStatus.INDEXED, path, size, mtime, "hash", chunking="c1",
        chunks=chunks, keys=[_key(t) for t in texts],
    )  # fmt: skip
    return [_vectors(texts), write]


def _commit(store: Store, *writes: Write) -> int:
    """`writes` committed by a run of their own, which completes."""
    run = store.begin_run(["/r"])
    store.claim_manifest(*SPACE, {"chunk_tokens": 64}, binding={"normalize": "true"})
    store.commit(list(writes), run)
    store.finish_run(run, "completed", {})
    return run


def _texts(store: Store) -> list[tuple[str, str]]:
    return [(row.path, row.text) for row, _ in store.iter_chunks()]


def test_a_commit_is_read_back_by_every_query(store: Store) -> None:
    run = _commit(store, *_indexed("/r/d/a.md", ["alpha one", "beta two"], size=7, mtime=9))
    record = store.lookup("/r/d/a.md")
    assert record is not None
    assert (record.size, record.mtime_ns, record.status, record.chunks) == (7, 9, "indexed", 2)
    assert record.content_hash == "hash" and record.chunking == "c1"
    assert store.lookup("/r/d/none.md") is None
    stamp = store.stamp("/r/d/a.md")
    assert stamp is not None and (stamp.size, stamp.mtime_ns, stamp.chunks) == (7, 9, 2)
    assert set(store.stamps_in_dir("/r/d")) == {"/r/d/a.md"}
    assert store.manifest()["dims"] == str(DIMS)
    assert store.manifest()["provider"] == "test" and store.manifest()["chunk_tokens"] == "64"

    rows = list(store.iter_chunks(vectors=True))
    assert [(r.path, r.ordinal, r.text, r.heading_path) for r, _ in rows] == [
        ("/r/d/a.md", 0, "alpha one", ("Top", "Sub")),
        ("/r/d/a.md", 1, "beta two", ("Top", "Sub")),
    ]
    for row, blob in rows:
        assert blob is not None
        assert np.array_equal(np.frombuffer(blob, "<f4"), expected_vector(row.text, DIMS))
    by_id = store.chunks_by_id([rows[1][0].id, 10**9])
    assert list(by_id) == [rows[1][0].id] and by_id[rows[1][0].id] == rows[1][0]

    stats = store.stats()
    assert stats.files == {"indexed": 1, "skipped": 0, "failed": 0}
    assert (stats.chunks, stats.tokens, stats.vectors, stats.cached_vectors) == (2, 4, 2, 2)
    assert (stats.unused_vectors, stats.held_vectors, stats.dims) == (0, 0, DIMS)
    assert stats.file_types == {".md": 1} and stats.db_bytes > 0
    store.finish_run(run, "completed", {"indexed": 1, "failed": 0, "seconds": 1.5})
    last = store.stats().last_run
    assert last is not None and (last.id, last.status, last.roots) == (run, "completed", ["/r"])
    assert last.summary == {"indexed": 1, "failed": 0, "seconds": 1.5} and last.seconds == 1.5


def test_a_file_is_replaced_whole_and_a_removal_leaves_nothing(store: Store) -> None:
    _commit(store, *_indexed("/r/a.md", ["old one", "old two", "old three"]))
    _commit(store, *_indexed("/r/a.md", ["new one"], size=20))
    assert _texts(store) == [("/r/a.md", "new one")]
    assert store.stats().unused_vectors == 3
    store.commit([FileWrite(FileStatus.REMOVED, "/r/a.md")], store.begin_run(["/r"]))
    assert store.lookup("/r/a.md") is None and _texts(store) == []
    assert store.stats().files == {"indexed": 0, "skipped": 0, "failed": 0}


def test_a_touch_changes_the_stamp_only(store: Store) -> None:
    _commit(store, *_indexed("/r/a.md", ["kept text"], size=5, mtime=1))
    touch = FileWrite(FileStatus.INDEXED, "/r/a.md", 6, 2, touch_only=True)
    store.commit([touch], store.begin_run(["/r"]))
    record = store.lookup("/r/a.md")
    assert record is not None and (record.size, record.mtime_ns, record.chunks) == (6, 2, 1)
    assert _texts(store) == [("/r/a.md", "kept text")]


def test_a_failure_keeps_the_old_version_and_is_listed(store: Store) -> None:
    _commit(store, *_indexed("/r/b.md", ["still searchable"], size=5, mtime=3))
    run = store.begin_run(["/r"])
    store.commit(
        [
            FileWrite(FileStatus.FAILED, "/r/b.md", reason="boom"),
            FileWrite(FileStatus.FAILED, "/r/a.md", reason="bad bytes"),
            FileWrite(FileStatus.SKIPPED, "/r/c.bin", 4, 4, reason="binary"),
        ],
        run,
    )
    assert store.failed_files() == [("/r/a.md", "bad bytes"), ("/r/b.md", "boom")]
    record = store.lookup("/r/b.md")
    assert record is not None and (record.status, record.reason) == ("failed", "boom")
    assert (record.size, record.mtime_ns) == (5, 3)  # retried next run
    assert _texts(store) == [("/r/b.md", "still searchable")]
    stats = store.stats()
    assert stats.files == {"indexed": 0, "skipped": 1, "failed": 2}
    store.finish_run(run, "completed", {"failed": 3})
    assert store.stats().failed_not_stored == 1  # three reported, two stored


# Byte order: ' ' '-' '.' sort before '/', '0' right after it, and 'é' after every ASCII.
TREE = ["/r/a b/x.md", "/r/a-b/x.md", "/r/a.md", "/r/a/x.md", "/r/a/y/z.md", "/r/a0", "/r/é.md"]


def test_the_tree_queries_compare_paths_in_byte_order(store: Store) -> None:
    run = store.begin_run(["/r"])
    store.commit(
        [FileWrite(FileStatus.SKIPPED, p, 1, 1, reason="empty") for p in reversed(TREE)], run
    )
    store.commit([FileWrite(FileStatus.SKIPPED, "/other/a.md", 1, 1)], run)
    assert list(store.paths_under("/r")) == sorted(TREE, key=os.fsencode)
    assert list(store.paths_under("/r/a")) == ["/r/a/x.md", "/r/a/y/z.md"]
    assert store.dirs_under("/r/a") == ["/r/a", "/r/a/y"]
    assert store.dirs_under("/r") == ["/r", "/r/a", "/r/a b", "/r/a-b", "/r/a/y"]
    assert store.count_under("/r/a", 100) == 2 and store.count_under("/r", 3) == 3
    assert store.count_under("/nowhere", 100) == 0 and store.dirs_under("/nowhere") == []


def test_a_directory_stamp_lasts_until_a_row_of_it_changes(store: Store) -> None:
    _commit(store, *_indexed("/r/d/a.md", ["one"]), *_indexed("/r/d/b.md", ["two"]))
    assert store.dir_stamp("/r/d") is None
    assert store.stamp_dirs() == 1
    stamp = store.dir_stamp("/r/d")
    assert stamp is not None and stamp.chunking == "c1" and stamp.chunks == [1, 1]
    assert store.stamp_dirs() == 0  # nothing changed since
    _commit(store, *_indexed("/r/d/b.md", ["two", "three"], size=11))
    assert store.dir_stamp("/r/d") is None
    assert store.stamp_dirs() == 1
    again = store.dir_stamp("/r/d")
    assert again is not None and again.chunks == [1, 2] and again.digest != stamp.digest


def test_the_cache_holds_one_vector_per_input(store: Store) -> None:
    _commit(store, *_indexed("/r/a.md", ["same words", "same words", "other"]))
    _commit(store, *_indexed("/r/b.md", ["same words"]))
    keys = [_key("same words"), _key("other"), _key("never embedded")]
    assert store.cached(keys) == set(keys[:2]) and store.cached([]) == set()
    stats = store.stats()
    assert (stats.chunks, stats.vectors, stats.cached_vectors) == (4, 4, 2)


def test_the_manifest_guards_the_vector_space(store: Store) -> None:
    _commit(store, *_indexed("/r/a.md", ["text"]))
    store.check_manifest("test", "m", DIMS, {"normalize": "true"})
    store.check_manifest("test", "m", 0)  # dims not known yet: anything
    with pytest.raises(ManifestMismatch, match="was built with model 'm', not 'other'"):
        store.check_manifest("test", "other", DIMS)
    with pytest.raises(ManifestMismatch, match="dims"):
        store.claim_manifest("test", "m", DIMS * 2, {})
    with pytest.raises(ManifestMismatch, match="normalize"):
        store.check_manifest("test", "m", DIMS, {"normalize": "false"})


def test_a_deferred_reset_waits_for_vectors(store: Store) -> None:
    _commit(store, *_indexed("/r/old.md", ["old text"]))
    store.reset(defer=True)
    assert store.resetting and store.manifest() == {}
    run = store.begin_run(["/r"])
    store.commit([FileWrite(FileStatus.SKIPPED, "/r/skip.bin", 1, 1)], run)
    # Nothing changed yet: a run that fails before its first vectors leaves the index.
    assert store.lookup("/r/old.md") is not None and store.lookup("/r/skip.bin") is None
    new = "new text"
    write = FileWrite(
        FileStatus.INDEXED, "/r/new.md", 1, 1, "h", chunking="c2",
        chunks=_chunks([new]), keys=[_key(new)],
    )  # fmt: skip
    store.claim_manifest("test", "m", DIMS, {"chunk_tokens": 32})
    store.commit([_vectors([new]), write], run)
    assert not store.resetting and store.lookup("/r/old.md") is None
    assert store.lookup("/r/skip.bin") is not None  # the held-back write went in with it
    assert _texts(store) == [("/r/new.md", new)]
    assert store.stats().cached_vectors == 1 and store.manifest()["chunk_tokens"] == "32"
    last = store.stats().last_run
    assert last is not None and last.id == run  # the resetting run's record stays


def test_a_reset_with_nothing_to_embed_completes(store: Store) -> None:
    _commit(store, *_indexed("/r/old.md", ["old text"]))
    store.reset(defer=True)
    run = store.begin_run(["/r"])
    store.commit([FileWrite(FileStatus.SKIPPED, "/r/skip.bin", 1, 1)], run)
    store.complete_reset(run)
    assert not store.resetting and store.lookup("/r/old.md") is None
    assert store.lookup("/r/skip.bin") is not None and store.stats().cached_vectors == 0


def test_a_reset_now_empties_everything(store: Store) -> None:
    _commit(store, *_indexed("/r/old.md", ["old text"]))
    store.reset()
    assert store.manifest() == {} and _texts(store) == [] and store.lookup("/r/old.md") is None
    stats = store.stats()
    assert (stats.cached_vectors, stats.last_run) == (0, None)


def _staged(store: Store, run: int, path: str, texts: Sequence[str], start: int) -> None:
    part = Staged(1, path, _chunks(texts, start), [_key(t) for t in texts])
    store.commit([_vectors(texts), part], run)


def test_staged_parts_are_invisible_until_their_file_commits(store: Store) -> None:
    _commit(store, *_indexed("/r/big.md", ["the old version"]))
    run = store.begin_run(["/r"])
    store.claim_manifest(*SPACE, {}, binding={"normalize": "true"})
    _staged(store, run, "/r/big.md", ["part one", "part two"], 0)
    _staged(store, run, "/r/big.md", ["part three"], 2)
    assert _texts(store) == [("/r/big.md", "the old version")]
    assert store.stats().chunks == 1 and store.stats().held_vectors == 3
    assert store.text_search(["part"], 10) == []
    final = FileWrite(
        FileStatus.INDEXED, "/r/big.md", 99, 2, "h2", chunking="c1",
        stage=1, staged_chunks=3, staged_tokens=6,
    )  # fmt: skip
    store.commit([final], run)
    assert [t for _, t in _texts(store)] == ["part one", "part two", "part three"]
    record = store.lookup("/r/big.md")
    assert record is not None and (record.size, record.chunks) == (99, 3)
    stats = store.stats()
    assert (stats.chunks, stats.tokens, stats.held_vectors, stats.unused_vectors) == (3, 6, 0, 1)
    assert len(store.text_search(["part"], 10)) == 3


def test_parts_a_dead_run_staged_are_held_then_let_go(store: Store, tmp_path: Path) -> None:
    (tmp_path / "big.md").touch()  # a file that exists: its parts are kept
    path, gone = str(tmp_path / "big.md"), str(tmp_path / "gone.md")
    dead = store.begin_run([str(tmp_path)])
    store.claim_manifest(*SPACE, {}, binding={"normalize": "true"})
    _staged(store, dead, path, ["paid for"], 0)
    _staged(store, dead, gone, ["lost"], 0)
    store.finish_run(dead, "interrupted", {})
    assert store.drop_staged() == 1  # the file that exists; the other's parts go
    stats = store.stats()
    assert (stats.held_vectors, stats.unused_vectors) == (1, 1)
    assert store.gc() == 1 and store.held_vectors() == 1  # gc keeps what was paid for
    assert store.cached([_key("paid for")]) == {_key("paid for")}
    _commit(store, *_indexed(path, ["paid for"]))
    assert store.held_vectors() == 0 and store.stats().unused_vectors == 0


def test_a_failed_files_chunks_are_held_until_it_is_indexed(store: Store) -> None:
    texts = ["came back one", "came back two"]
    failed = FileWrite(
        FileStatus.FAILED, "/r/a.md", reason="refused",
        held=list(zip(_chunks(texts), [_key(t) for t in texts], strict=True)),
    )  # fmt: skip
    _commit(store, _vectors(texts), failed)
    stats = store.stats()
    assert (stats.chunks, stats.held_vectors, stats.unused_vectors) == (0, 2, 0)
    assert store.text_search(["came"], 10) == [] and store.gc() == 0
    assert store.held_vectors() == 2
    _commit(store, *_indexed("/r/a.md", texts))
    assert store.held_vectors() == 0 and store.stats().chunks == 2
    assert store.failed_files() == []


def test_gc_drops_what_stats_counts_as_unused(store: Store) -> None:
    _commit(store, *_indexed("/r/a.md", ["a one", "a two", "shared"]))
    _commit(store, *_indexed("/r/b.md", ["shared"]))
    store.commit([FileWrite(FileStatus.REMOVED, "/r/a.md")], store.begin_run(["/r"]))
    stats = store.stats()
    assert (stats.cached_vectors, stats.unused_vectors) == (3, 2)
    assert store.gc() == 2
    after = store.stats()
    assert (after.cached_vectors, after.unused_vectors, after.chunks) == (1, 0, 1)
    size, free = store.file_bytes()
    assert size > 0 and 0 <= free <= size
    store.vacuum()
    assert _texts(store) == [("/r/b.md", "shared")]


def test_text_search_folds_case_accents_and_cjk(store: Store) -> None:
    texts = {
        "/r/cafe.md": "Le Café de la gare",
        "/r/cjk.md": "查看磁盘空间使用情况",
        "/r/code.md": "Error TW-E4031 raised in compute_backoff_delay",
        "/r/apart.md": "the tw team saw e4031 later",
    }
    _commit(store, *[w for path, text in texts.items() for w in _indexed(path, [text])])
    paths = {row.id: row.path for row, _ in store.iter_chunks()}

    def found(query: str) -> list[str]:
        return [paths[i] for i, _ in store.text_search(query_terms(query), 10)]

    assert found("cafe") == found("CAFÉ") == ["/r/cafe.md"]
    assert found("磁盘使用") == ["/r/cjk.md"]
    assert found("TW-E4031") == ["/r/code.md"]  # the joined term, not its parts apart
    assert found("compute_backoff_delay") == ["/r/code.md"]
    hits = store.text_search(query_terms("gare café"), 10)
    assert [paths[i] for i, _ in hits] == ["/r/cafe.md"] and hits[0][1] > 0
    for hostile in ["a' & !b | (c:*", 'NEAR("x" y)', "OR AND NOT", "'", "*", "\\"]:
        assert store.text_search(query_terms(hostile) or [hostile], 10) == []


def test_text_search_ranks_more_matches_first(store: Store) -> None:
    _commit(
        store,
        *_indexed("/r/one.md", ["retry once and stop"]),
        *_indexed("/r/many.md", ["retry retry retry backoff retry"]),
    )
    paths = {row.id: row.path for row, _ in store.iter_chunks()}
    hits = store.text_search(["retry", "backoff"], 10)
    assert [paths[i] for i, _ in hits] == ["/r/many.md", "/r/one.md"]
    assert hits[0][1] > hits[1][1] and len(store.text_search(["retry"], 1)) == 1


def _clustered(n: int, dims: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Unit vectors in clusters, like a real embedder's (low intrinsic dimension)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(n // 50, 1), 12))
    latent = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, 12))
    vectors = latent @ rng.normal(size=(12, dims)) + 0.05 * rng.normal(size=(n, dims))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def test_vector_search_finds_the_nearest_chunks(store: Store) -> None:
    """recall@10 against exact search at least 0.95 (HNSW on Postgres; exact on SQLite), and
    a query that is a stored vector finds its chunk first."""
    n, dims = 3000, 32
    vectors = _clustered(n, dims, seed=7)
    texts = [f"chunk {i}" for i in range(n)]
    keys = [embedding_key("test", "m", dims, t) for t in texts]
    run = store.begin_run(["/r"])
    store.claim_manifest("test", "m", dims, {}, binding={"normalize": "true"})
    writes: list[Write] = [Embeddings(keys, vectors)]
    for f in range(0, n, 100):  # 30 files of 100 chunks
        writes.append(
            FileWrite(
                FileStatus.INDEXED,
                f"/r/f{f:05d}.md",
                1,
                1,
                "h",
                chunking="c",
                chunks=_chunks(texts[f : f + 100], 0),
                keys=keys[f : f + 100],
            )
        )
    store.commit(writes, run)
    ids = {row.text: row.id for row, _ in store.iter_chunks()}
    by_id = np.array([ids[t] for t in texts])
    rng = np.random.default_rng(8)  # queries near stored chunks, as real ones are
    queries = vectors[rng.integers(0, n, 60)] + 0.3 * rng.normal(size=(60, dims))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    recalls = []
    for q in queries:
        hits = store.vector_search(q, 10)
        assert len(hits) == 10
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        exact = by_id[np.argsort(-(vectors @ q))[:10]]
        recalls.append(len(set(exact.tolist()) & {i for i, _ in hits}) / 10)
    assert float(np.mean(recalls)) >= 0.95, np.mean(recalls)
    own = store.vector_search(vectors[123], 3)
    assert own[0][0] == ids["chunk 123"] and own[0][1] == pytest.approx(1.0, abs=1e-5)


def test_vector_search_sees_only_visible_chunks(store: Store) -> None:
    """A vector that only staged, held or removed chunks use is never a hit, however near;
    the visible chunks behind it are still found."""
    _commit(store, *_indexed("/r/a.md", ["visible one", "visible two"]))
    _commit(store, *_indexed("/r/gone.md", ["removed"]))
    store.commit([FileWrite(FileStatus.REMOVED, "/r/gone.md")], store.begin_run(["/r"]))
    run = store.begin_run(["/r"])
    _staged(store, run, "/r/a.md", ["staged"], 0)
    for hidden in ("removed", "staged"):
        hits = store.vector_search(expected_vector(hidden, DIMS), 5)
        assert len(hits) == 2, hidden
        assert {store.chunks_by_id([i])[i].text for i, _ in hits} == {"visible one", "visible two"}


def test_each_run_shows_its_progress_and_whether_it_lives(store: Store) -> None:
    """`stats().workers`: a live run's files done, failed and in flight; a run whose owner
    went without finishing is "died"; an ended run stays listed a while, newest first."""
    if isinstance(store, SqliteStore):  # one writer at a time: its lock says it lives
        lock = WriterLock(Path(store.location))
        assert lock.try_acquire()
    ended = store.begin_run(["/r"], worker="host:1")
    store.finish_run(ended, "completed", {})
    run = store.begin_run(["/r"], worker="host:2", shard="2/3")
    store.claim_manifest(*SPACE, {}, binding={"normalize": "true"})
    store.commit([*_indexed("/r/a.md", ["a"]), FileWrite(FileStatus.SKIPPED, "/r/b", 1, 1)], run)
    store.commit([FileWrite(FileStatus.FAILED, "/r/c.md", reason="x")], run)
    store.commit([FileWrite(FileStatus.INDEXED, "/r/a.md", 2, 2, touch_only=True)], run)
    store.heartbeat(run, 3)
    live, done = store.stats().workers
    assert (live.run_id, live.worker, live.shard, live.status) == (run, "host:2", "2/3", "running")
    assert (live.files_done, live.files_failed, live.in_flight) == (2, 1, 3)
    assert live.heartbeat_at is not None and live.started_at <= live.heartbeat_at
    assert (done.run_id, done.worker, done.shard, done.status) == (
        ended,
        "host:1",
        None,
        "completed",
    )
    if isinstance(store, SqliteStore):
        lock.release()
        died = store.stats().workers[0]
    else:  # its session goes, and the run's lock with it
        from ragidx.store.postgres import PostgresStore

        other = PostgresStore.open(store.location)  # a test server's URL has no password
        store.close()
        try:
            died = other.stats().workers[0]
        finally:
            other.close()
    assert (died.run_id, died.status, died.files_done, died.in_flight) == (run, "died", 2, 0)
