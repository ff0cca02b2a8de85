"""Many workers on one Postgres index: what only `PostgresStore` promises. Groups from
several connections at once share the embedding cache without a duplicate; `run_lock` keeps
two runs off the same files; `drop_staged` takes only dead runs' parts; a connection lost
under a group is reconnected and the group sent again, never half-committed; `gc` waits for
groups in flight; workers that start together migrate once; `reset` waits for other runs.

Each test has a fresh database (`pg_url`, tests/pg.py) and opens its own stores: each store
is one connection, as each worker process has.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from ragidx.errors import IndexBusy, Interrupted, ManifestMismatch, StoreError
from ragidx.models import Chunk, FileStatus
from ragidx.store.base import Embeddings, FileWrite, Staged, Write
from ragidx.store.cache import embedding_key
from ragidx.store.postgres import PostgresStore, is_postgres_url, run_lock
from ragidx.store.postgres.migrations import GC, SCHEMA_VERSION, index_vectors, lock_key

pytestmark = pytest.mark.postgres

DIMS = 8
SPACE = ("test", "model", DIMS)


def _chunk(ordinal: int, text: str) -> Chunk:
    return Chunk(ordinal, text, text, 0, len(text), 1, 1, (), len(text.split()))


def _vector(text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    rng = np.random.default_rng(abs(hash(text)) % 2**32)
    v = rng.standard_normal(DIMS).astype(np.float32)
    return v / np.linalg.norm(v)


def _file(path: str, texts: list[str]) -> list[Write]:
    """A file's group: its vectors cached, then the file that uses them."""
    keys = [embedding_key(*SPACE, t) for t in texts]
    chunks = [_chunk(i, t) for i, t in enumerate(texts)]
    return [
        Embeddings(keys, np.stack([_vector(t) for t in texts])),
        FileWrite(
            FileStatus.INDEXED,
            path,
            size=len(texts),
            mtime_ns=1,
            content_hash="h",
            chunking="c",
            chunks=chunks,
            keys=keys,
        ),
    ]


def _open(url: str) -> PostgresStore:
    store = PostgresStore.open(url)
    store.claim_manifest(*SPACE, {"chunk_tokens": 100}, binding={"normalize": "true"})
    return store


@pytest.fixture
def opened(pg_url: str) -> Iterator[Callable[[], PostgresStore]]:
    """Opens stores (workers) on the test's index; closes them all after."""
    stores: list[PostgresStore] = []

    def new() -> PostgresStore:
        stores.append(_open(pg_url))
        return stores[-1]

    yield new
    for store in stores:
        store.close()


def _admin(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(url, autocommit=True)


def _until(done: Callable[[], object], what: str) -> None:
    """Poll `done()` until true; a minute without is a hang, not a slow machine."""
    for _ in range(3000):
        if done():
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"never {what}")


def _when_waiting(url: str, pid: int) -> None:
    """Return once the backend `pid` waits on a lock."""
    with _admin(url) as conn:
        query = "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
        _until(lambda: conn.execute(query, (pid,)).fetchone(), f"saw backend {pid} wait")


def _counts(url: str) -> tuple[int, int, int]:
    """Files, chunks, cached vectors in the index (schema `ragidx`)."""
    with _admin(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ragidx.files WHERE stage IS NULL),"
            " (SELECT count(*) FROM ragidx.chunks WHERE visible),"
            " (SELECT count(*) FROM ragidx.embeddings)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_urls_are_told_apart_and_shown_without_the_password(pg_url: str) -> None:
    assert is_postgres_url(pg_url) and is_postgres_url("postgres://u@h/db")
    assert not is_postgres_url("idx.db") and not is_postgres_url("/tmp/postgresql://x")
    with_password = pg_url.replace("postgres:@", "postgres:s3cret-pw@")
    store = PostgresStore.open(with_password)
    try:
        assert "s3cret-pw" not in store.location and "postgres@" in store.location
    finally:
        store.close()
    missing = with_password.replace("/t_", "/nope_")
    with pytest.raises(StoreError) as caught:
        PostgresStore.open(missing)
    assert "s3cret-pw" not in str(caught.value) and "nope_" in str(caught.value)


def test_workers_that_start_together_migrate_once(pg_url: str) -> None:
    url = f"{pg_url}&schema=fresh"
    errors: list[BaseException] = []

    def open_close() -> None:
        try:
            PostgresStore.open(url).close()
        except BaseException as exc:  # collected: asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_close) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with _admin(pg_url) as conn:
        versions = conn.execute("SELECT version FROM fresh.schema_version").fetchall()
        assert versions == [(SCHEMA_VERSION,)]


def test_two_indexes_share_a_database_in_their_own_schemas(pg_url: str) -> None:
    one, two = PostgresStore.open(pg_url), PostgresStore.open(f"{pg_url}&schema=other")
    try:
        run = one.begin_run(["/r"])
        one.claim_manifest(*SPACE, {})
        one.commit(_file("/r/a.txt", ["alpha beta"]), run)
        assert one.lookup("/r/a.txt") is not None and two.lookup("/r/a.txt") is None
        assert two.manifest() == {}
    finally:
        one.close()
        two.close()


def test_concurrent_groups_share_the_cache_without_duplicates(
    opened: Callable[[], PostgresStore], pg_url: str
) -> None:
    # Four workers commit files whose chunks overlap: each caches every vector it uses
    # (ON CONFLICT DO NOTHING), and each chunk finds the one row of its key.
    shared = [f"shared paragraph {i}" for i in range(30)]
    workers = [opened() for _ in range(4)]
    runs = [w.begin_run(["/r"], worker=f"w{i}") for i, w in enumerate(workers)]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for f in range(10):
                texts = [*shared[f : f + 10], f"own {n} {f}"]
                workers[n].commit(_file(f"/r/{n}/{f}.txt", texts), runs[n])
        except BaseException as exc:  # collected: asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files, chunks, cached = _counts(pg_url)
    assert (files, chunks) == (40, 40 * 11)
    assert cached == len(shared[:19]) + 40  # each distinct input once
    with _admin(pg_url) as conn:
        done = conn.execute(
            "SELECT worker, files_done FROM ragidx.ragidx_progress ORDER BY worker"
        ).fetchall()
        tied = conn.execute(
            "SELECT c.text, e.key FROM ragidx.chunks c"
            " LEFT JOIN ragidx.embeddings e ON e.id = c.embedding_id"
        ).fetchall()
    assert done == [(f"w{i}", 10) for i in range(4)]
    # Every chunk is tied to the cached vector of its own input.
    assert all(key == embedding_key(*SPACE, text) for text, key in tied)
    # ... and to the vector of its own input: search finds each shared text first.
    reader = workers[0]
    top = reader.vector_search(_vector(shared[5]), 3)
    rows = reader.chunks_by_id([i for i, _ in top])
    assert {rows[i].text for i, _ in top} == {shared[5]}


def test_a_second_claim_of_another_space_is_refused_in_its_commit(
    opened: Callable[[], PostgresStore], pg_url: str
) -> None:
    first, second = opened(), opened()
    second.claim_manifest("test", "other-model", DIMS, {})  # the index is empty: allowed now
    first.commit(_file("/r/a.txt", ["alpha"]), first.begin_run(["/r"]))
    with pytest.raises(ManifestMismatch):
        second.commit(_file("/r/b.txt", ["beta"]), second.begin_run(["/r"]))
    assert second.lookup("/r/b.txt") is None and first.manifest()["model"] == "model"
    # Settings that do not change vectors are not the space: a third worker's differ.
    third = opened()
    third.claim_manifest(*SPACE, {"chunk_tokens": 50}, binding={"normalize": "true"})
    third.commit(_file("/r/c.txt", ["gamma"]), third.begin_run(["/r"]))
    assert third.manifest()["chunk_tokens"] == "50"


def test_drop_staged_takes_only_the_parts_of_runs_that_died(
    opened: Callable[[], PostgresStore], tmp_path: Path
) -> None:
    big = str(tmp_path / "big.txt")
    Path(big).write_text("x")
    live, doomed, next_run = opened(), opened(), opened()
    live_run, doomed_run = live.begin_run([str(tmp_path)]), doomed.begin_run([str(tmp_path)])
    keys = [embedding_key(*SPACE, t) for t in ("one", "two")]
    cache = Embeddings(keys, np.stack([_vector("one"), _vector("two")]))
    live.commit([cache, Staged(1, big, [_chunk(0, "one")], keys[:1])], live_run)
    doomed.commit([cache, Staged(1, big, [_chunk(0, "one")], keys[:1])], doomed_run)
    pid = doomed.conn.info.backend_pid
    doomed.close()  # killed: its session's locks go, its run still says running
    with _admin(str(doomed.target.conninfo)) as conn:  # once its backend has exited
        query = "SELECT 1 FROM pg_stat_activity WHERE pid = %s"
        _until(lambda: not conn.execute(query, (pid,)).fetchone(), "saw the backend exit")

    assert next_run.drop_staged() == 1  # the dead run's part, not the live one's
    assert next_run.held_vectors() == 2 - 1  # "one": held for the file
    final = FileWrite(
        FileStatus.INDEXED,
        big,
        size=1,
        mtime_ns=1,
        chunking="c",
        stage=1,
        staged_chunks=2,
        staged_tokens=2,
    )
    live.commit([Staged(1, big, [_chunk(1, "two")], keys[1:]), final], live_run)
    record = live.lookup(big)
    assert record is not None and record.chunks == 2 and record.status == "indexed"
    assert [row.text for row, _ in live.iter_chunks()] == ["one", "two"]
    assert live.held_vectors() == 0  # indexed: what was held for it is let go
    statuses = {w.run_id: w.status for w in live.stats().workers}
    assert statuses[doomed_run] == "died" and statuses[live_run] == "running"


def test_a_connection_lost_between_groups_is_reopened(
    opened: Callable[[], PostgresStore], pg_url: str
) -> None:
    store = opened()
    run = store.begin_run(["/r"], worker="me")
    store.commit(_file("/r/a.txt", ["alpha"]), run)
    with _admin(pg_url) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (store.conn.info.backend_pid,))
    store.commit(_file("/r/b.txt", ["beta"]), run)
    assert _counts(pg_url)[:2] == (2, 2)
    # The run's lock was taken again on the new connection: it is not taken for dead.
    assert {w.run_id: w.status for w in store.stats().workers}[run] == "running"


def _reconnected(store: PostgresStore, old: int) -> bool:
    return store.conn.info.backend_pid not in (old, 0)  # a broken connection's pid reads 0


def _block_then_kill(url: str, store: PostgresStore, path: str, kills: int) -> threading.Thread:
    """Hold a row lock on `path`'s row, so that a group writing it waits half-way; kill the
    waiting backend `kills` times, then let go."""
    holder = _admin(url)
    holder.execute("BEGIN")
    holder.execute("SELECT 1 FROM ragidx.files WHERE path = %s FOR UPDATE", (path,))

    def run() -> None:
        with _admin(url) as killer:
            pid = store.conn.info.backend_pid
            for kill in range(1, kills + 1):
                _when_waiting(url, pid)
                killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
                if kill < kills:
                    _until(functools.partial(_reconnected, store, pid), "reconnected")
                pid = store.conn.info.backend_pid
        holder.execute("ROLLBACK")
        holder.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_connection_lost_mid_group_sends_the_group_again(
    opened: Callable[[], PostgresStore], pg_url: str
) -> None:
    store = opened()
    run = store.begin_run(["/r"])
    store.commit(_file("/r/b.txt", ["old beta"]), run)
    first = store.conn.info.backend_pid
    killer = _block_then_kill(pg_url, store, "/r/b.txt", kills=1)
    # a.txt is written, then the group waits on b.txt's row and its connection is killed.
    store.commit([*_file("/r/a.txt", ["alpha"]), *_file("/r/b.txt", ["new beta"])], run)
    killer.join()
    assert store.conn.info.backend_pid != first  # the group went again on a new connection
    assert [row.text for row, _ in store.iter_chunks()] == ["alpha", "new beta"]


def test_a_group_that_keeps_losing_its_connection_fails_whole(
    opened: Callable[[], PostgresStore], pg_url: str
) -> None:
    store = opened()
    run = store.begin_run(["/r"])
    store.commit(_file("/r/b.txt", ["old beta"]), run)
    killer = _block_then_kill(pg_url, store, "/r/b.txt", kills=3)
    with pytest.raises(StoreError, match="3 tries"):
        store.commit([*_file("/r/a.txt", ["alpha"]), *_file("/r/b.txt", ["new beta"])], run)
    killer.join()
    # Nothing of the group: a.txt, written before the wait each time, is not there.
    assert [row.text for row, _ in store.iter_chunks()] == ["old beta"]
    assert store.lookup("/r/a.txt") is None


def test_gc_waits_for_a_group_in_flight(opened: Callable[[], PostgresStore], pg_url: str) -> None:
    store = opened()
    run = store.begin_run(["/r"])
    store.commit(_file("/r/a.txt", ["alpha"]), run)
    # Another worker's group, half-way: its vector cached, the chunk using it not yet written.
    worker = _admin(pg_url)
    worker.execute("BEGIN")
    worker.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", (lock_key("ragidx", "index"), GC))
    worker.execute(
        "INSERT INTO ragidx.embeddings (key, vector) VALUES (%s, %s::vector)",
        (b"k" * 16, str(_vector("late").tolist())),
    )
    dropped: list[int] = []
    gc = threading.Thread(target=lambda: dropped.append(opened().gc()))
    gc.start()
    with _admin(pg_url) as conn:
        query = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        _until(lambda: conn.execute(query).fetchone(), "saw gc wait")
    worker.execute(
        "INSERT INTO ragidx.chunks (file_id, ordinal, text, char_start, char_end, line_start,"
        " line_end, heading_path, tokens, visible, tsv, embedding_id)"
        " SELECT id, 1, 'late', 0, 4, 1, 1, '[]', 1, true, '', currval(pg_get_serial_sequence("
        "'ragidx.embeddings', 'id')) FROM ragidx.files WHERE path = '/r/a.txt'"
    )
    worker.execute("COMMIT")
    worker.close()
    gc.join()
    assert dropped == [0]  # the vector the group cached is in use, and kept
    assert _counts(pg_url)[2] == 2


def test_reset_is_refused_while_another_run_is_alive(
    opened: Callable[[], PostgresStore],
) -> None:
    other, me = opened(), opened()
    theirs = other.begin_run(["/r"], worker="host:42")
    other.commit(_file("/r/a.txt", ["alpha"]), theirs)
    with pytest.raises(StoreError, match="host:42"):
        me.reset()
    other.finish_run(theirs, "completed", {})
    me.reset()
    assert me.lookup("/r/a.txt") is None and me.manifest() == {}


def test_progress_counts_what_each_run_committed(
    opened: Callable[[], PostgresStore], pg_url: str
) -> None:
    store = opened()
    run = store.begin_run(["/r"], worker="host:7", shard="2/3")
    store.commit(
        [
            *_file("/r/a.txt", ["alpha"]),
            FileWrite(FileStatus.FAILED, "/r/b.txt", reason="x"),
            FileWrite(FileStatus.SKIPPED, "/r/c.bin", chunking="c"),
            FileWrite(FileStatus.INDEXED, "/r/a.txt", size=5, mtime_ns=9, touch_only=True),
        ],
        run,
    )
    store.heartbeat(run, 4)
    (progress,) = store.stats().workers
    assert (progress.worker, progress.shard, progress.status) == ("host:7", "2/3", "running")
    assert (progress.files_done, progress.files_failed, progress.in_flight) == (2, 1, 4)
    with _admin(pg_url) as conn:
        row = conn.execute(
            "SELECT status, files_done, files_failed, in_flight FROM ragidx.ragidx_progress"
        ).fetchone()
    assert row == ("running", 2, 1, 4)


# -- run_lock ---------------------------------------------------------------------------


async def _holding(url: str, shard: str | None) -> tuple[Any, asyncio.Event]:
    """Enter `run_lock` in a task that holds it until the returned event is set."""
    entered, leave = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with run_lock(url, shard, wait=False, on_wait=lambda _: None):
            entered.set()
            await leave.wait()

    task = asyncio.create_task(hold())
    await asyncio.wait(
        [task, asyncio.create_task(entered.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    if task.done():
        task.result()  # raises IndexBusy
    return task, leave


async def _busy(url: str, shard: str | None) -> bool:
    try:
        async with run_lock(url, shard, wait=False, on_wait=lambda _: None):
            return False
    except IndexBusy:
        return True


def test_run_lock_keeps_runs_of_the_same_files_apart(pg_url: str) -> None:
    async def check() -> None:
        task, leave = await _holding(pg_url, None)
        assert await _busy(pg_url, None) and await _busy(pg_url, "1/2")
        leave.set()
        await task
        one, leave_one = await _holding(pg_url, "1/2")
        two, leave_two = await _holding(pg_url, "2/2")  # another part: runs beside it
        assert await _busy(pg_url, "1/2")  # the same part
        assert await _busy(pg_url, None)  # the whole index
        assert await _busy(pg_url, "1/4")  # another split: its parts overlap these
        for leave_it, t in ((leave_one, one), (leave_two, two)):
            leave_it.set()
            await t
        assert not await _busy(pg_url, "1/4")

    asyncio.run(check())


def test_run_lock_waits_until_free_and_hears_who_holds_it(pg_url: str) -> None:
    store = PostgresStore.open(pg_url)
    store.begin_run(["/r"], worker="host:1")
    heard: list[str | None] = []

    async def check() -> None:
        task, leave = await _holding(pg_url, None)
        told = asyncio.Event()
        waiting = asyncio.create_task(_enter_waiting(pg_url, heard, told))
        await told.wait()
        assert not waiting.done()
        leave.set()
        await task
        await waiting

    try:
        asyncio.run(check())
    finally:
        store.close()
    assert heard == ["host:1"]


async def _enter_waiting(url: str, heard: list[str | None], told: asyncio.Event) -> None:
    def on_wait(holder: str | None) -> None:
        heard.append(holder)
        told.set()

    async with run_lock(url, None, wait=True, on_wait=on_wait):
        pass


def test_run_lock_gives_up_when_asked(pg_url: str) -> None:
    async def check() -> None:
        task, leave = await _holding(pg_url, "1/2")
        with pytest.raises(Interrupted):
            async with run_lock(
                pg_url, "1/2", wait=True, on_wait=lambda _: None, give_up=lambda: True
            ):
                pass
        leave.set()
        await task

    asyncio.run(check())


def _hnsw(url: str) -> list[tuple[Any, ...]]:
    with _admin(url) as conn:
        return conn.execute(
            "SELECT indisvalid FROM pg_index"
            " WHERE indexrelid = to_regclass('ragidx.embeddings_hnsw')"
        ).fetchall()


def test_the_vector_index_is_built_whole_after_a_run_that_ended(
    opened: Callable[[], PostgresStore], pg_url: str
) -> None:
    store = opened()
    stopped = store.begin_run(["/r"])
    store.commit(_file("/r/a.txt", ["alpha", "beta"]), stopped)
    store.finish_run(stopped, "interrupted", {})
    assert _hnsw(pg_url) == []  # not after a run that was stopped: search scans meanwhile
    completed = store.begin_run(["/r"])
    store.commit(_file("/r/b.txt", ["gamma"]), completed)
    store.finish_run(completed, "completed", {})
    assert _hnsw(pg_url) == [(True,)]
    # Kept up by later commits: search through it finds a chunk committed after the build.
    later = store.begin_run(["/r"])
    store.commit(_file("/r/c.txt", ["delta"]), later)
    (best, _), *_ = store.vector_search(_vector("delta"), 1)
    assert store.chunks_by_id([best])[best].text == "delta"
    store.reset()  # a reset drops it: the reload is built whole again
    assert _hnsw(pg_url) == []


def test_a_reader_of_a_read_only_store_is_read_only(
    opened: Callable[[], PostgresStore], pg_url: str
) -> None:
    store = opened()
    run = store.begin_run(["/r"])
    store.commit(_file("/r/a.txt", ["alpha"]), run)
    store.finish_run(run, "interrupted", {})
    reading = PostgresStore.open_for_reading(pg_url)
    reader = reading.reader()
    try:
        assert reader.manifest()["model"] == SPACE[1]
        with pytest.raises(StoreError, match="read-only"):
            reader.begin_run(["/r"])
    finally:
        reader.close()
        reading.close()
    assert _counts(pg_url) == (1, 1, 1)


class _SmallShm:
    """A connection on which the first HNSW build fails as a parallel build fails on a server
    whose /dev/shm cannot hold the graph (Docker's 64 MB): Postgres cannot be given a smaller
    /dev/shm from here. Records `max_parallel_maintenance_workers` at each build."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], error: type[Exception]):
        self.conn, self.error, self.builds = conn, error, list[str]()

    def execute(self, query: str, *args: Any) -> Any:
        if query.startswith("CREATE INDEX"):
            shown = self.conn.execute("SHOW max_parallel_maintenance_workers").fetchone()
            self.builds.append(str(shown[0] if shown else None))
            if len(self.builds) == 1:
                raise self.error("could not resize shared memory segment: No space left")
        return self.conn.execute(query, *args)


def test_a_vector_index_build_without_shared_memory_is_built_by_one_process(
    opened: Callable[[], PostgresStore], pg_url: str
) -> None:
    store = opened()
    run = store.begin_run(["/r"])
    store.commit(_file("/r/a.txt", ["alpha", "beta"]), run)
    store.finish_run(run, "interrupted", {})  # no build yet
    with _admin(pg_url) as conn:
        conn.execute("SET search_path = ragidx, public")
        (default,) = conn.execute("SHOW max_parallel_maintenance_workers").fetchone() or ("",)
        shm = _SmallShm(conn, psycopg.errors.DiskFull)
        assert index_vectors(shm, "ragidx")  # type: ignore[arg-type]
        assert shm.builds == [default, "0"]
        assert conn.execute("SHOW max_parallel_maintenance_workers").fetchone() == (default,)
        with conn.transaction():
            # Another error is not about memory: it is raised, not built around.
            conn.execute("DROP INDEX embeddings_hnsw")
        other = _SmallShm(conn, psycopg.errors.QueryCanceled)
        with pytest.raises(psycopg.errors.QueryCanceled):
            index_vectors(other, "ragidx")  # type: ignore[arg-type]
        assert other.builds == [default]
    assert _hnsw(pg_url) == []
    # The table lets Postgres plan workers for the build, whatever TOAST left in its heap.
    with _admin(pg_url) as conn:
        options = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = 'ragidx.embeddings'::regclass"
        ).fetchone()
    assert options == (["parallel_workers=64"],)


def test_a_group_whose_answer_was_lost_is_not_applied_twice(
    opened: Callable[[], PostgresStore], tmp_path: Path
) -> None:
    # The server committed the group, and the connection broke before its answer came back:
    # sending it again would put the big file's last part in the place of the whole file.
    # (No socket loses exactly that answer on cue: the writer's state after such a loss is
    # set by hand, as `connect.retried` leaves it before it sends the group again.)
    store = opened()
    run = store.begin_run([str(tmp_path)])
    big = str(tmp_path / "big.txt")
    keys = [embedding_key(*SPACE, t) for t in ("one", "two")]
    store.commit(
        [
            Embeddings(keys, np.stack([_vector("one"), _vector("two")])),
            Staged(1, big, [_chunk(0, "one")], keys[:1]),
        ],
        run,
    )
    last: list[Write] = [
        Staged(1, big, [_chunk(1, "two")], keys[1:]),
        FileWrite(
            FileStatus.INDEXED,
            big,
            size=2,
            mtime_ns=1,
            content_hash="h",
            chunking="c",
            stage=1,
            staged_chunks=2,
            staged_tokens=2,
        ),
    ]
    store.commit(last, run)
    writer = store._writer
    writer._sending = (last, writer._groups[run])
    store.commit(last, run)
    assert [row.text for row, _ in store.iter_chunks()] == ["one", "two"]
    (progress,) = store.stats().workers
    assert progress.files_done == 1
