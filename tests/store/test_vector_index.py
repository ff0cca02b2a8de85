"""The vector file beside a SQLite index (`<db>-vectors`): search over it answers exactly
what scoring every visible chunk's stored vector answers (ids and scores), after commits,
gc and resets, after the file is cut short, deleted or left behind by the database, after
a writer is killed, when embedding ids are used again; staged and held vectors are never
answered; an index that cannot be written is searched all the same."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import RAGIDX, Cli, db_rows, write

from ragidx.models import Chunk, FileStatus
from ragidx.store import SqliteStore
from ragidx.store.base import Embeddings, FileWrite, Staged
from ragidx.store.cache import embedding_key

DIMS = 8
SPACE = ("p", "m", DIMS)


def _open(db: Path) -> SqliteStore:
    store = SqliteStore.open(db)
    store.claim_manifest(*SPACE, {"normalize": "true"})
    return store


def _unit(rng: np.random.Generator, n: int) -> np.ndarray[Any, Any]:
    v = rng.standard_normal((n, DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)  # type: ignore[no-any-return]


def _pieces(texts: list[str]) -> tuple[list[Chunk], list[bytes]]:
    chunks = [Chunk(i, t, t, 0, len(t), 1, 1, (), 1) for i, t in enumerate(texts)]
    return chunks, [embedding_key(*SPACE, t) for t in texts]


def _file(path: str, texts: list[str], vectors: np.ndarray[Any, Any]) -> list[Any]:
    """An indexed file's write and the vectors it uses (one per distinct text)."""
    chunks, keys = _pieces(texts)
    distinct = dict(zip(keys, vectors, strict=True))
    embeddings = Embeddings(list(distinct), np.array(list(distinct.values()), dtype=np.float32))
    w = FileWrite(FileStatus.INDEXED, path, 1, 1, "h", chunks=chunks, keys=keys)
    return [embeddings, w]


def _commit_files(
    store: SqliteStore, rng: np.random.Generator, names: list[str], per_file: int = 5
) -> None:
    writes: list[Any] = []
    for name in names:
        texts = [f"{name} chunk {i} {rng.integers(1 << 30)}" for i in range(per_file)]
        writes += _file(name, texts, _unit(rng, per_file))
    store.commit(writes, store.begin_run(["/"]))


def _remove(store: SqliteStore, *paths: str) -> None:
    store.commit([FileWrite(FileStatus.REMOVED, p) for p in paths], store.begin_run(["/"]))


def _exact(store: SqliteStore, q: np.ndarray[Any, Any], k: int) -> list[tuple[int, float]]:
    """Every visible chunk's stored vector scored by numpy: the answer to match."""
    rows = [(row.id, np.frombuffer(blob, "<f4")) for row, blob in store.iter_chunks(vectors=True)]
    scored = [(-float(v @ q / max(np.linalg.norm(v), 1e-12)), cid) for cid, v in rows if v.size]
    return [(cid, -s) for s, cid in sorted(scored)[:k]]


def _assert_exact(store: SqliteStore, rng: np.random.Generator, k: int = 7) -> None:
    for q in _unit(rng, 5):
        q = q / np.linalg.norm(q)
        found, wanted = store.vector_search(q, k), _exact(store, q, k)
        assert [c for c, _ in found] == [c for c, _ in wanted]
        assert [s for _, s in found] == pytest.approx([s for _, s in wanted], abs=1e-5)


def _side(db: Path) -> Path:
    return Path(f"{db}-vectors")


def _rows_in(db: Path) -> int:
    """How many rows the vector file holds, by its size (64-byte header)."""
    return (_side(db).stat().st_size - 64) // (DIMS * 4)


def _max_id(db: Path) -> int:
    return int(db_rows(db, "SELECT coalesce(max(id), 0) FROM embeddings")[0][0])


def test_follows_every_commit(tmp_path: Path) -> None:
    rng, db = np.random.default_rng(1), tmp_path / "idx.db"
    store, reader = _open(db), None
    try:
        for n in range(4):
            _commit_files(store, rng, [f"/d/{n}-{i}.md" for i in range(6)])
            assert _rows_in(db) == _max_id(db)  # appended by the commit, not by a search
            _assert_exact(store, rng)
            reader = reader or SqliteStore.open(db)
            _assert_exact(reader, rng)  # another connection maps what the writer appended
    finally:
        store.close()
        if reader is not None:
            reader.close()


def test_chunks_sharing_a_vector_are_each_answered(tmp_path: Path) -> None:
    rng, store = np.random.default_rng(2), _open(tmp_path / "idx.db")
    try:
        v = _unit(rng, 2)
        run = store.begin_run(["/"])
        store.commit(_file("/a.md", ["same", "same", "other"], np.array([v[0], v[0], v[1]])), run)
        store.commit(_file("/b.md", ["same"], v[:1]), run)
        found = store.vector_search(v[0], 3)
        assert [s for _, s in found] == pytest.approx([1.0, 1.0, 1.0])
        _assert_exact(store, rng)
    finally:
        store.close()


def test_after_gc_and_after_a_reset(tmp_path: Path) -> None:
    rng, db = np.random.default_rng(3), tmp_path / "idx.db"
    store = _open(db)
    try:
        _commit_files(store, rng, [f"/d/{i}.md" for i in range(10)])
        _remove(store, *(f"/d/{i}.md" for i in range(0, 10, 2)))
        assert store.gc() == 25
        _assert_exact(store, rng)
        store.reset()
        assert not _side(db).exists()
        assert store.vector_search(_unit(rng, 1)[0], 5) == []
        store.claim_manifest(*SPACE, {"normalize": "true"})
        _commit_files(store, rng, ["/new.md"])
        _assert_exact(store, rng)
        store.reset(defer=True)  # emptied in the transaction of the next commit
        _commit_files(store, rng, ["/newer.md"])
        _assert_exact(store, rng)
        assert {row.path for row, _ in store.iter_chunks()} == {"/newer.md"}
    finally:
        store.close()


def test_ids_used_again_never_answer_with_the_old_vector(tmp_path: Path) -> None:
    rng, db = np.random.default_rng(4), tmp_path / "idx.db"
    store = _open(db)
    try:
        _commit_files(store, rng, ["/a.md", "/b.md"])
        top = _max_id(db)
        old = [np.frombuffer(b, "<f4") for _, b in store.iter_chunks(vectors=True)][-5:]
        shutil.copy(_side(db), tmp_path / "old-vectors")
        _remove(store, "/b.md")
        assert store.gc() == 5
        _commit_files(store, rng, ["/c.md"])
        assert _max_id(db) == top  # /c.md's vectors took /b.md's ids
        for stale in (False, True):
            if stale:  # the file as it was before the gc, header and all
                shutil.copy(tmp_path / "old-vectors", _side(db))
            for q in old:
                found = store.vector_search(q, 3)
                assert found[0][1] < 0.999  # /b.md is gone, and so is its vector
            _assert_exact(store, rng)
    finally:
        store.close()


@pytest.mark.parametrize("harm", ["truncated", "deleted", "stale", "torn header", "garbage"])
def test_a_file_that_cannot_be_trusted_is_rebuilt(tmp_path: Path, harm: str) -> None:
    rng, db = np.random.default_rng(5), tmp_path / "idx.db"
    store = _open(db)
    try:
        _commit_files(store, rng, ["/a.md", "/b.md"])
        shutil.copy(_side(db), tmp_path / "before")
        _remove(store, "/a.md")
        store.gc()
        _commit_files(store, rng, ["/c.md", "/d.md"])
        side = _side(db)
        data = side.read_bytes()
        if harm == "truncated":
            side.write_bytes(data[: len(data) - DIMS * 4 - 3])
        elif harm == "deleted":
            side.unlink()
        elif harm == "stale":  # an older generation's file, its header intact
            shutil.copy(tmp_path / "before", side)
        elif harm == "torn header":
            side.write_bytes(data[:20] + bytes([data[20] ^ 1]) + data[21:])
        else:
            side.write_bytes(b"\x01" * len(data))
        _assert_exact(store, rng)
        assert _rows_in(db) == _max_id(db) and side.stat().st_size == 64 + _max_id(db) * DIMS * 4
    finally:
        store.close()


def test_staged_and_held_vectors_are_never_answered(tmp_path: Path) -> None:
    rng, db = np.random.default_rng(6), tmp_path / "idx.db"
    store = _open(db)
    try:
        _commit_files(store, rng, ["/a.md"])
        hidden = _unit(rng, 2)
        chunks, keys = _pieces(["staged part", "held part"])
        run = store.begin_run(["/"])
        store.commit(
            [
                Embeddings(keys, hidden),
                Staged(1, "/big.md", chunks[:1], keys[:1]),
                FileWrite(FileStatus.FAILED, "/bad.md", reason="x", held=[(chunks[1], keys[1])]),
            ],
            run,
        )
        assert store.held_vectors() == 2 and _rows_in(db) == _max_id(db)
        for q in hidden:
            found = store.vector_search(q, 10)
            assert len(found) == 5 and all(s < 0.999 for _, s in found)
        _assert_exact(store, rng, k=10)
    finally:
        store.close()


def test_damaged_vectors_are_reported_not_ranked(tmp_path: Path) -> None:
    rng, db = np.random.default_rng(7), tmp_path / "idx.db"
    store = _open(db)
    try:
        _commit_files(store, rng, ["/a.md", "/b.md"])
        ids = db_rows(db, "SELECT embedding_id FROM chunks c JOIN files f ON f.id = c.file_id"
                      " WHERE f.path = '/b.md' ORDER BY c.id")  # fmt: skip
        bad = [np.full(DIMS, 3, "<f4").tobytes(), b"\0" * 5]
        conn = store.conn
        for (eid,), blob in zip(ids, bad, strict=False):
            conn.execute("UPDATE embeddings SET vector = ? WHERE id = ?", (blob, eid))
        heard: list[tuple[str, int]] = []
        found = store.vector_search(_unit(rng, 1)[0], 20, lambda p, n: heard.append((p, n)))
        assert heard == [("/b.md", 2)]
        sql = "SELECT id FROM chunks WHERE embedding_id IN (?, ?)"
        spoilt = {c for (c,) in db_rows(db, sql, [ids[0][0], ids[1][0]])}
        assert len(found) == 8 and spoilt.isdisjoint(c for c, _ in found)
    finally:
        store.close()


_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from pathlib import Path
    from ragidx.models import Chunk, FileStatus
    from ragidx.store import SqliteStore
    from ragidx.store.base import Embeddings, FileWrite
    from ragidx.store.cache import embedding_key

    store = SqliteStore.open(Path(sys.argv[1]))
    store.claim_manifest("p", "m", 8, {"normalize": "true"})
    rng = np.random.default_rng(8)
    n = 0
    while True:
        writes = []
        for f in range(20):
            texts = [f"{sys.argv[2]} {n} {f} {i}" for i in range(10)]
            keys = [embedding_key("p", "m", 8, t) for t in texts]
            v = rng.standard_normal((10, 8)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            chunks = [Chunk(i, t, t, 0, len(t), 1, 1, (), 1) for i, t in enumerate(texts)]
            path = f"/{sys.argv[2]}/{n}/{f}.md"
            writes += [Embeddings(keys, v), FileWrite(FileStatus.INDEXED, path, 1, 1,
                       "h", chunks=chunks, keys=keys)]
        store.commit(writes, store.begin_run(["/"]))
        if n % 7 == 3:
            gone = [f"/{sys.argv[2]}/{n - 2}/{f}.md" for f in range(5)]
            store.commit([FileWrite(FileStatus.REMOVED, p) for p in gone],
                         store.begin_run(["/"]))
            store.gc()
        n += 1
    """
)


def _committed(db: Path) -> int:
    try:
        return _max_id(db) if db.exists() else 0
    except sqlite3.Error:  # made, not yet given its tables
        return 0


def test_a_killed_writer_leaves_nothing_wrong(tmp_path: Path) -> None:
    db, rng = tmp_path / "idx.db", np.random.default_rng(9)
    for kill in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(kill)])
        try:
            deadline = time.monotonic() + 60
            # Killed at a different point each time: after some commits, gc or appends.
            while time.monotonic() < deadline and _committed(db) < 600 * (kill + 1):
                time.sleep(0.02)
            time.sleep(0.013 * kill)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert _max_id(db) >= 600 * (kill + 1), "the writer never got going"
        store = SqliteStore.open(db)
        try:
            _assert_exact(store, rng)
            assert _rows_in(db) == _max_id(db)
        finally:
            store.close()


def test_an_index_that_cannot_be_written_is_searched(cli: Cli, sample: Path, work: Path) -> None:
    """The file missing where the directory is read-only: the vectors are read into memory."""
    try:
        probe = subprocess.run(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
             'mount --bind -o ro "$1" "$1" && touch "$1/x"', "sh", str(work)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except OSError as exc:
        pytest.skip(f"cannot run unshare: {exc}")
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"no read-only mount in a user namespace here: {probe.stderr.strip()}")
    (work / "ro").mkdir()
    assert cli("index", "sample_docs", "--db", "ro/idx.db", "-q").exit_code == 0
    search = [*RAGIDX, "search", "thundering herd", "--db", "ro/idx.db", "--json"]
    search += ["--mode", "vector", "-k", "8"]
    wanted = subprocess.run(search, cwd=work, capture_output=True, text=True, check=True)
    for harm in ("deleted", "stale"):
        if harm == "deleted":
            _side(work / "ro/idx.db").unlink()
        else:
            write(work, {"ro/idx.db-vectors": b"\0" * 200})
        found = subprocess.run(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
             'mount --bind -o ro "$1" "$1" && shift && exec "$@"', "sh", str(work / "ro"),
             *search],
            cwd=work, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert found.stdout == wanted.stdout
