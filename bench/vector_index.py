"""Vector indexes that could live with ragidx's SQLite index, measured (issue 18, item 6).

    uv venv ~/.cache/ragidx-bench/venvs/vec --python 3.11
    uv pip install --python ~/.cache/ragidx-bench/venvs/vec/bin/python \\
        numpy sqlite-vec usearch pysqlite3-binary
    ~/.cache/ragidx-bench/venvs/vec/bin/python bench/vector_index.py \\
        [--sizes 10000,100000,1000000] [--repeat 3] [--usearch f32,f16,i8] [--keep]

The candidates need packages the project does not lock, so they live in their own venv
(above), never in `uv.lock`. ragidx's own code is imported from this checkout.

Vectors: 384 dimensions, float32, unit length, clustered (1,000 Gaussian centres, each point
its centre plus noise, normalised); 200 queries, each a data point plus a little noise.
Ground truth: exact top 10 by numpy in the bench process. Candidates, each built from the
same rows under ~/.cache/ragidx-bench/vector/<N>/ (made anew every run; --keep keeps them):

- `numpy-exact`: a real ragidx index (`ragidx.store.connect`: the real schema, WAL), one
  file row per 20 chunks, one chunk per cached embedding, queried by ragidx's own
  `ragidx.store.queries.vector_search` (the `vectors` view, BLOBs read in slices).
- `numpy-mmap`: the same vectors in a raw float32 file beside the database (`vectors.f32`,
  row i = embedding id i + 1), `np.memmap` and one matrix product a query.
- `vec0-*`: sqlite-vec `vec0` tables in the same database file: float32 (exact, cosine),
  int8 (`vec_quantize_int8(v, 'unit')`) and bit (`vec_quantize_binary`), the quantized ones
  searched for k x oversample rows and rescored with the float32 BLOBs of `embeddings`.
  The project's Python (pyenv 3.11.7) is built without `enable_load_extension`, so vec0 is
  reached through pysqlite3-binary (its own SQLite) when the standard module cannot load it.
- `usearch-*`: an HNSW file beside the database (`Index(ndim=384, metric='cos', dtype=...)`,
  defaults: connectivity 16, expansion_add 128, expansion_search 64), searched memory-mapped
  (`Index.restore(path, view=True)`).

Query figures come from a fresh child process per candidate (`launch.py`: peak RSS of that
process), which opens the index, answers one query (cold: from the spawn to the first answer,
open and imports included; the page cache is warm), then 200 more one at a time (p50, p95,
recall@10). With --repeat N the children take turns N times and figures are medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_SPAWNED = time.time()  # a child's start, for its cold figure (the parent passes its own)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = Path.home() / ".cache" / "ragidx-bench" / "vector"
DIMS = 384
CENTRES = 1000
QUERIES = 200
K = 10
ADD = 1000
CHUNKS_PER_FILE = 20
SEED = 18
MB = 1 << 20
QUANTIZED = {"vec0-int8": ("int8", 4), "vec0-bit": ("bit", 8), "vec0-bit-x32": ("bit", 32)}


# ---------------------------------------------------------------------------- data


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors around CENTRES centres: noise of about 0.8 the centre's length."""
    centres = unit(rng.standard_normal((CENTRES, DIMS), dtype=np.float32))
    out = np.empty((n, DIMS), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        noise = rng.standard_normal((m, DIMS), dtype=np.float32) * (0.8 / DIMS**0.5)
        out[start : start + m] = unit(centres[rng.integers(0, CENTRES, m)] + noise)
    return out


def exact_top(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Embedding ids (row + 1) of each query's k best, by numpy."""
    scores = queries @ data.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, 1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, 1) + 1


# ---------------------------------------------------------------------------- build


def vec_connect(db: Path) -> Any:
    """A connection that has sqlite-vec loaded: the standard module where it may load
    extensions, else pysqlite3's."""
    import sqlite_vec

    probe = sqlite3.connect(":memory:")
    mod: Any = sqlite3
    if not hasattr(probe, "enable_load_extension"):
        import pysqlite3.dbapi2 as mod  # type: ignore[no-redef]
    conn = mod.connect(db, isolation_level=None)
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    conn.enable_load_extension(False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def db_size(db: Path) -> int:
    return sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())


def used_pages(conn: Any) -> int:
    """Bytes in pages that hold data (the file less its free pages): a table's growth,
    even where it reuses pages freed before (no dbstat in these builds)."""
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    return int((pages - free) * size)


def checkpoint(conn: Any) -> None:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def insert_rows(conn: sqlite3.Connection, vectors: np.ndarray, first_id: int) -> None:
    """Files, chunks and cached embeddings as ragidx stores them: one chunk per vector."""
    n = len(vectors)
    ids = range(first_id, first_id + n)
    files = sorted({(i - 1) // CHUNKS_PER_FILE + 1 for i in ids})
    conn.executemany(
        "INSERT OR IGNORE INTO files (id, path, dir, status, updated_at)"
        " VALUES (?, ?, 'd', 'indexed', 0)",
        ((f, f"d/f{f}.md") for f in files),
    )
    conn.executemany(
        "INSERT INTO embeddings (id, key, vector) VALUES (?, ?, ?)",
        ((i, i.to_bytes(8, "big"), vectors[i - first_id].tobytes()) for i in ids),
    )
    conn.executemany(
        "INSERT INTO chunks (id, file_id, ordinal, text, char_start, char_end, line_start,"
        " line_end, heading_path, tokens, embedding_id)"
        " VALUES (?, ?, ?, '', 0, 0, 1, 1, '[]', 1, ?)",
        ((i, (i - 1) // CHUNKS_PER_FILE + 1, (i - 1) % CHUNKS_PER_FILE, i) for i in ids),
    )


def timed(fn: Any, *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def build_sqlite(d: Path, data: np.ndarray, extra: np.ndarray) -> dict[str, Any]:
    from ragidx.store.connect import connect

    db = d / "index.db"
    conn = connect(db)
    n = len(data)

    def load(vectors: np.ndarray, first: int) -> None:
        conn.execute("BEGIN")
        insert_rows(conn, vectors, first)
        conn.execute("COMMIT")

    build = timed(load, data, 1)
    checkpoint(conn)
    size = db_size(db)
    add = timed(load, extra, n + 1)
    conn.execute("BEGIN")  # back to n rows for the queries
    conn.execute("DELETE FROM chunks WHERE id > ?", (n,))
    conn.execute("DELETE FROM embeddings WHERE id > ?", (n,))
    conn.execute("COMMIT")
    checkpoint(conn)
    conn.close()
    return {"build_s": build, "add_s": add, "disk": size}


def read_vectors(db: Path, n: int) -> np.ndarray:
    """Every cached vector in id order, from SQLite (what a rebuild reads)."""
    conn = sqlite3.connect(db)
    out = np.empty((n, DIMS), dtype=np.float32)
    cursor = conn.execute("SELECT id, vector FROM embeddings ORDER BY id")
    while rows := cursor.fetchmany(4096):
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)) - 1
        out[ids] = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(-1, DIMS)
    conn.close()
    return out


def build_mmap(d: Path, n: int, extra: np.ndarray) -> dict[str, Any]:
    path = d / "vectors.f32"

    def export() -> None:
        vectors = read_vectors(d / "index.db", n)
        with open(path, "wb") as out:
            out.write(vectors.tobytes())
            out.flush()
            os.fsync(out.fileno())

    build = timed(export)
    size = path.stat().st_size

    def append() -> None:
        with open(path, "ab") as out:
            out.write(extra.tobytes())
            out.flush()
            os.fsync(out.fileno())

    add = timed(append)
    os.truncate(path, size)
    return {"build_s": build, "add_s": add, "disk": size}


def vec0_table(name: str) -> tuple[str, str, str]:
    """(column type, SQL that turns a float32 BLOB `?`/column into the stored value, k factor)"""
    if name == "vec0-f32":
        return "float[384] distance_metric=cosine", "{}", "1"
    kind = QUANTIZED[name][0]
    if kind == "int8":
        return "int8[384] distance_metric=cosine", "vec_quantize_int8({}, 'unit')", ""
    return "bit[384]", "vec_quantize_binary({})", ""


def table_of(name: str) -> str:
    return {"vec0-f32": "vec_f32", "vec0-int8": "vec_int8"}.get(name, "vec_bit")


def build_vec0(d: Path, n: int, extra: np.ndarray, name: str) -> dict[str, Any]:
    db = d / "index.db"
    conn = vec_connect(db)
    table = table_of(name)
    column, quantize, _ = vec0_table(name)
    before = used_pages(conn)

    def create() -> None:
        conn.execute("BEGIN")
        conn.execute(f"CREATE VIRTUAL TABLE {table} USING vec0(embedding {column})")
        conn.execute(
            f"INSERT INTO {table}(rowid, embedding)"
            f" SELECT id, {quantize.format('vector')} FROM embeddings ORDER BY id"
        )
        conn.execute("COMMIT")

    build = timed(create)
    checkpoint(conn)
    size = db_size(db) - before
    size = used_pages(conn) - before
    rows = [(n + 1 + i, extra[i].tobytes()) for i in range(len(extra))]

    def add() -> None:
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO {table}(rowid, embedding) VALUES (?, {quantize.format('?')})", rows
        )
        conn.execute("COMMIT")

    added = timed(add)
    remove = timed(
        lambda: (
            conn.execute("BEGIN"),
            conn.execute(f"DELETE FROM {table} WHERE rowid > ?", (n,)),
            conn.execute("COMMIT"),
        )
    )
    result = {"build_s": build, "add_s": added, "remove_s": remove, "disk": size}
    if name == "vec0-f32":
        result["rollback_ok"] = rollback_check(conn, table, rows, n)
    checkpoint(conn)
    conn.close()
    return result


def rollback_check(conn: Any, table: str, rows: list[tuple[int, bytes]], n: int) -> bool:
    """Insert rows in a transaction, roll it back: the count, the rows' absence and a KNN
    answer must be as before."""
    query = rows[0][1]
    knn = f"SELECT rowid FROM {table} WHERE embedding MATCH ? AND k = 10"
    before = [r[0] for r in conn.execute(knn, (query,))]
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO {table}(rowid, embedding) VALUES (?, ?)", rows)
    inside = [r[0] for r in conn.execute(knn, (query,))]
    conn.execute("ROLLBACK")
    after = [r[0] for r in conn.execute(knn, (query,))]
    (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    (ghost,) = conn.execute(f"SELECT count(*) FROM {table} WHERE rowid > ?", (n,)).fetchone()
    return bool(inside != before and after == before and count == n and ghost == 0)


def kill_check(d: Path, n: int) -> bool:
    """A child process inserts 1,000 rows into vec_f32 and is SIGKILLed inside the
    transaction; the table must then hold n rows and answer as before."""
    here, db = str(Path(__file__).parent), str(d / "index.db")
    code = (
        f"import sys, os, signal, numpy as np; sys.path.insert(0, {here!r});"
        f"import vector_index as v; c = v.vec_connect(v.Path({db!r})); c.execute('BEGIN');"
        "x = v.unit(np.random.default_rng(1).standard_normal((1000, 384), dtype=np.float32));"
        "c.executemany('INSERT INTO vec_f32(rowid, embedding) VALUES (?, ?)',"
        f" [({n + 1} + i, x[i].tobytes()) for i in range(1000)]);"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    conn = vec_connect(d / "index.db")
    (count,) = conn.execute("SELECT count(*) FROM vec_f32").fetchone()
    ok = count == n
    conn.close()
    return ok


def build_usearch(d: Path, n: int, extra: np.ndarray, dtype: str) -> dict[str, Any]:
    from usearch.index import Index

    path = d / f"usearch-{dtype}.usearch"
    started = time.perf_counter()
    vectors = read_vectors(d / "index.db", n)
    read = time.perf_counter() - started
    index = Index(ndim=DIMS, metric="cos", dtype=dtype)
    started = time.perf_counter()
    index.add(np.arange(1, n + 1, dtype=np.uint64), vectors, threads=os.cpu_count() or 1)
    add_all = time.perf_counter() - started
    save = timed(index.save, str(path))
    size = path.stat().st_size
    del index, vectors
    load = timed(lambda: Index.restore(str(path), view=False))
    index = Index.restore(str(path), view=False)
    keys = np.arange(n + 1, n + 1 + len(extra), dtype=np.uint64)
    add = timed(lambda: index.add(keys, extra, threads=os.cpu_count() or 1))
    save_again = timed(index.save, str(d / "scratch.usearch"))
    remove = timed(lambda: index.remove(keys))
    os.remove(d / "scratch.usearch")
    return {
        "build_s": read + add_all + save,
        "read_s": read,
        "hnsw_s": add_all,
        "save_s": save,
        "load_s": load,
        "add_s": add,
        "add_save_s": add + save_again,
        "remove_s": remove,
        "disk": size,
    }


# ---------------------------------------------------------------------------- query (child)


def child(kind: str, d: Path, spawned: float) -> dict[str, Any]:
    """Open the index like a fresh `ragidx search`, answer the first query (cold), then
    QUERIES one at a time."""
    queries = np.load(d / "queries.npy")
    truth = np.load(d / "truth.npy")
    search = open_searcher(kind, d)
    first = search(queries[0])
    cold = time.time() - spawned
    times, hits = [], 0
    count = max(5, min(QUERIES, 2_000_000 // len(np.load(d / "ids.npy", mmap_mode="r"))))
    if kind != "numpy-exact":
        count = QUERIES
    for q, want in zip(queries[:count], truth[:count], strict=True):
        started = time.perf_counter()
        got = search(q)
        times.append(time.perf_counter() - started)
        hits += len(set(got[:K]) & set(want.tolist()))
    assert len(first) == K, (kind, first)
    times.sort()
    return {
        "cold_s": cold,
        "p50_s": times[len(times) // 2],
        "p95_s": times[int(len(times) * 0.95)],
        "recall": hits / (K * count),
        "queries": count,
    }


def open_searcher(kind: str, d: Path) -> Any:
    db = d / "index.db"
    if kind == "numpy-exact":
        from ragidx.store.connect import connect_for_reading
        from ragidx.store.queries import vector_search

        conn = connect_for_reading(db)
        return lambda q: [i for i, _ in vector_search(conn, q, K, unit=True)]
    if kind == "numpy-mmap":
        matrix = np.memmap(d / "vectors.f32", dtype=np.float32, mode="r").reshape(-1, DIMS)

        def mmap_search(q: np.ndarray) -> list[int]:
            scores = matrix @ q
            top = np.argpartition(-scores, K)[:K]
            return (top[np.argsort(-scores[top])] + 1).tolist()

        return mmap_search
    if kind.startswith("vec0-"):
        conn = vec_connect(db)
        table = table_of(kind)
        if kind == "vec0-f32":
            sql = f"SELECT rowid FROM {table} WHERE embedding MATCH ? AND k = {K}"
            return lambda q: [r[0] for r in conn.execute(sql, (q.tobytes(),))]
        _, quantize, _ = vec0_table(kind)
        wide = K * QUANTIZED[kind][1]
        sql = (
            f"SELECT rowid FROM {table} WHERE embedding MATCH {quantize.format('?')} AND k = {wide}"
        )

        def rescored(q: np.ndarray) -> list[int]:
            ids = [r[0] for r in conn.execute(sql, (q.tobytes(),))]
            rows = conn.execute(
                f"SELECT id, vector FROM embeddings WHERE id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
            found = np.array([r[0] for r in rows])
            scores = np.frombuffer(b"".join(r[1] for r in rows), "<f4").reshape(-1, DIMS) @ q
            return found[np.argsort(-scores)[:K]].tolist()

        return rescored
    if kind.startswith("usearch-"):
        from usearch.index import Index

        name, _, ef = kind.partition("-ef")
        index = Index.restore(str(d / f"{name}.usearch"), view=True)
        if ef:
            index.expansion_search = int(ef)
        return lambda q: index.search(q, K, threads=1).keys.tolist()
    raise SystemExit(f"unknown candidate {kind}")


def run_child(kind: str, d: Path) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("r") as report:
        spawned = time.time()
        done = subprocess.run(
            [
                sys.executable,
                "-S",
                str(Path(__file__).with_name("launch.py")),
                report.name,
                sys.executable,
                __file__,
                "--child",
                kind,
                str(d),
                repr(spawned),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            return {"error": done.stderr.strip().splitlines()[-1:]}
        _wall, _cpu, rss_kib = report.read().split()
    out = json.loads(done.stdout)
    out["rss_mb"] = int(rss_kib) / 1024
    return out


# ---------------------------------------------------------------------------- main


def measure(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    both = clustered(n + ADD, rng)
    data, extra = both[:n], both[n:]
    picks = rng.integers(0, n, QUERIES)
    queries = unit(data[picks] + rng.standard_normal((QUERIES, DIMS), dtype=np.float32) * 0.02)
    truth = exact_top(data, queries, K)
    d = CACHE / str(n)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    np.save(d / "queries.npy", queries)
    np.save(d / "truth.npy", truth)
    np.save(d / "ids.npy", np.arange(1, n + 1))
    print(f"[{n:,}] data and truth in {time.perf_counter() - started:.1f}s", file=sys.stderr)

    builds: dict[str, dict[str, Any]] = {}
    builds["numpy-exact"] = build_sqlite(d, data, extra)
    builds["numpy-mmap"] = build_mmap(d, n, extra)
    for name in ("vec0-f32", "vec0-int8", "vec0-bit"):
        builds[name] = build_vec0(d, n, extra, name)
    for t in args.usearch:
        builds[f"usearch-{t}"] = build_usearch(d, n, extra, t)
    for name, built in builds.items():
        print(f"[{n:,}] built {name}: {built}", file=sys.stderr)
    builds["vec0-bit-x32"] = builds["vec0-bit"]
    for t in args.usearch:
        builds[f"usearch-{t}-ef{args.ef}"] = builds[f"usearch-{t}"]
    if n == min(args.sizes):
        builds["vec0-f32"]["kill_ok"] = kill_check(d, n)
    del data, extra, both

    kinds = list(builds)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for _ in range(args.repeat):
        for kind in kinds:
            runs[kind].append(run_child(kind, d))
    rows = []
    for kind in kinds:
        good = [r for r in runs[kind] if "error" not in r]
        row: dict[str, Any] = {"size": n, "candidate": kind, **builds[kind]}
        if not good:
            row["error"] = runs[kind][0]["error"]
        else:
            for key in ("cold_s", "p50_s", "p95_s", "recall", "rss_mb"):
                row[key] = statistics.median(r[key] for r in good)
            row["p50_runs"] = [round(r["p50_s"] * 1000, 1) for r in good]
        rows.append(row)
        print(f"[{n:,}] {kind}: {row}", file=sys.stderr)
    if not args.keep:
        shutil.rmtree(d)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'size':>9} {'candidate':<17} {'build s':>8} {'+1k s':>7} {'p50 ms':>8} {'p95 ms':>8}"
        f" {'cold ms':>8} {'recall':>6} {'MB disk':>8} {'RSS MB':>7} {'p50 x':>7} {'cold x':>7}"
    )
    lines = [head]
    base: dict[int, dict[str, Any]] = {
        r["size"]: r for r in rows if r["candidate"] == "numpy-exact"
    }
    for r in rows:
        if "error" in r:
            lines.append(f"{r['size']:>9,} {r['candidate']:<17} FAILED {r['error']}")
            continue
        b = base[r["size"]]
        add = r.get("add_save_s", r["add_s"])
        lines.append(
            f"{r['size']:>9,} {r['candidate']:<17} {r['build_s']:>8.2f} {add:>7.3f}"
            f" {r['p50_s'] * 1000:>8.2f} {r['p95_s'] * 1000:>8.2f} {r['cold_s'] * 1000:>8.0f}"
            f" {r['recall']:>6.3f} {r['disk'] / MB:>8.0f}"
            f" {r['rss_mb']:>7.0f} {b['p50_s'] / r['p50_s']:>6.1f}x"
            f" {b['cold_s'] / r['cold_s']:>6.1f}x"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--usearch", default="f32,f16,i8")
    parser.add_argument("--ef", type=int, default=256, help="usearch's wider expansion_search")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here too")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "DIR", "SPAWNED"))
    args = parser.parse_args()
    if args.child:
        kind, d, spawned = args.child
        print(json.dumps(child(kind, Path(d), float(spawned))))
        return 0
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.usearch = [t for t in args.usearch.split(",") if t]
    import usearch

    probe = sqlite3.connect(":memory:")
    print(
        f"python {sys.version.split()[0]} ({sys.executable}), sqlite3 {sqlite3.sqlite_version},"
        f" enable_load_extension: {hasattr(probe, 'enable_load_extension')};"
        f" numpy {np.__version__}, usearch {usearch.__version__},"
        f" sqlite-vec {vec_connect(Path(':memory:')).execute('SELECT vec_version()').fetchone()[0]}"
        f" via {'sqlite3' if hasattr(probe, 'enable_load_extension') else 'pysqlite3'};"
        f" load {os.getloadavg()[0]:.2f}",
    )
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        for row in measure(n, args):
            rows.append(row)
        if args.out:
            args.out.write_text(json.dumps(rows, indent=1))
        print(f"[{n:,}] done; load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print(table(rows))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
