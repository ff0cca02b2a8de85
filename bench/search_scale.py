"""Vector search at scale through a real store (issue 18, item 6).

    uv run python bench/search_scale.py [--sizes 10000,100000,1000000] [--cli-size 100000]
        [--store sqlite|postgres] [--url URL] [--ef-search 40,100,400] [--keep]
        [--out FILE.json]

For each size: an index of N chunks of 384 dimensions (clustered unit vectors as in
bench/vector_index.py, seeded) built through the real `Store` API: one `FileWrite` per 20
chunks with the `Embeddings` they use, in commits of 5,000 chunks, inside one run
(`begin_run` ... `finish_run(..., "completed")`). Then, from a fresh child process (its own
peak RSS): one cold query, 200 queries one at a time (p50, p95), recall@10 against exact
numpy over the same vectors (a hit is mapped back to its vector by its path and ordinal).

SQLite (`build_sqlite`): each commit also appends to the vector file beside the index; also
the time to rebuild that file from nothing (deleted, then one search), and the file sizes.
Postgres (`build_postgres`, into the schema `s<N>` of `--url`, or of a throwaway server from
bench/pg.py): the load (the commits) and the HNSW build that `finish_run` starts, timed
apart; `pg_database_size` and the HNSW index's size. The child's RSS is the client's only.
With --ef-search: recall@10 and p50 at each `hnsw.ef_search`, in this process.

With --cli-size: an index of that many chunks in the default offline embedder's space (its
model and dims, 1,024), so that `ragidx search QUERY --db X` accepts it; the whole command's
wall time in vector and in hybrid mode, each the median of 5 runs taking turns (after one
that warms the caches: the page cache, and the bytecode, kept under the bench's cache as in
bench/imports.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragidx.models import Chunk, FileStatus  # noqa: E402
from ragidx.store import SqliteStore, Store  # noqa: E402
from ragidx.store.base import Embeddings, FileWrite  # noqa: E402
from ragidx.store.cache import embedding_key  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))

CACHE = Path.home() / ".cache" / "ragidx-bench" / "search_scale"
DIMS = 384
CENTRES = 1000
QUERIES = 200
K = 10
PER_FILE = 20
PER_COMMIT = 5000
SEED = 18
SPACE = ("bench", "clustered")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors around CENTRES centres, noise about 0.8 the centre's length."""
    centres = unit(rng.standard_normal((CENTRES, dims), dtype=np.float32))
    out = np.empty((n, dims), dtype=np.float32)
    for start in range(0, n, 100_000):
        end = min(n, start + 100_000)
        pick = rng.integers(0, CENTRES, end - start)
        noise = rng.standard_normal((end - start, dims), dtype=np.float32) * (0.8 / dims**0.5)
        out[start:end] = unit(centres[pick] + noise)
    return out


def queries_for(data: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    picks = rng.integers(0, len(data), QUERIES)
    noise = rng.standard_normal((QUERIES, data.shape[1]), dtype=np.float32) * 0.02
    return unit(data[picks] + noise)


def exact_top(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Row indices of the exact top K per query."""
    out = np.empty((len(queries), K), dtype=np.int64)
    for i, q in enumerate(queries):
        s = data @ q
        top = np.argpartition(-s, K)[:K]
        out[i] = top[np.argsort(-s[top])]
    return out


# ---------------------------------------------------------------------------- backends


def _fill(store: Store, data: np.ndarray, space: tuple[str, str, int]) -> int:
    """Commit `data` (chunk ordinal j of file f uses vector f * PER_FILE + j); the run id."""
    run = store.begin_run(["/bench"])
    for start in range(0, len(data), PER_COMMIT):
        writes: list[Any] = []
        for f in range(start, min(len(data), start + PER_COMMIT), PER_FILE):
            rows = range(f, min(len(data), f + PER_FILE))
            texts = [f"chunk {i}" for i in rows]
            keys = [embedding_key(*space, t) for t in texts]
            chunks = [Chunk(j, t, t, 0, len(t), 1, 1, (), 1) for j, t in enumerate(texts)]
            writes.append(Embeddings(keys, data[f : f + len(texts)]))
            writes.append(
                FileWrite(FileStatus.INDEXED, f"/bench/f{f // PER_FILE:07d}.md", 1, 1, "h",
                          chunks=chunks, keys=keys)
            )  # fmt: skip
        store.commit(writes, run)
    return run


def build_sqlite(
    db: str, data: np.ndarray, space: tuple[str, str, int], settings: dict[str, str],
    timings: dict[str, float],
) -> Store:  # fmt: skip
    """Add `data` to the index at `db`, through the Store API."""
    store = SqliteStore.open(Path(db))
    store.claim_manifest(*space, settings)
    run = _fill(store, data, space)
    store.finish_run(run, "completed", {"seconds": 0})
    return store


def build_postgres(
    url: str, data: np.ndarray, space: tuple[str, str, int], settings: dict[str, str],
    timings: dict[str, float],
) -> Store:  # fmt: skip
    """Add `data` to the index at `url`; `timings` gets the load (the commits) and the HNSW
    build that finishing the run starts (`index_vectors`, where the index is missing)."""
    from ragidx.store.postgres import PostgresStore

    store = PostgresStore.open(url)
    store.claim_manifest(*space, settings)
    t = time.perf_counter()
    run = _fill(store, data, space)
    timings["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    store.finish_run(run, "completed", {"seconds": 0})
    timings["hnsw_s"] = time.perf_counter() - t
    return store


def query_store(store: Store, queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    """Seconds per query and the chunk ids found, one query at a time."""
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        hits = store.vector_search(q, K)
        times.append(time.perf_counter() - t)
        found.append([cid for cid, _ in hits])
    return times, found


BUILDERS: dict[str, Callable[..., Store]] = {"sqlite": build_sqlite, "postgres": build_postgres}


def open_store(kind: str, where: str) -> Store:
    if kind == "postgres":
        from ragidx.store.postgres import PostgresStore

        return PostgresStore.open_for_reading(where)
    return SqliteStore.open_for_reading(Path(where))


def rows_of(store: Store, found: list[list[int]]) -> list[list[int]]:
    """The vectors (rows of the data) the chunk ids found stand for, by path and ordinal."""
    chunks = store.chunks_by_id({cid for ids in found for cid in ids})
    row = {cid: int(c.path[-10:-3]) * PER_FILE + c.ordinal for cid, c in chunks.items()}
    return [[row[cid] for cid in ids] for ids in found]


def pg_sizes(url: str) -> dict[str, float]:
    """The database's size and the HNSW index's, in MB."""
    import psycopg

    from ragidx.store.postgres.connect import target

    where = target(url)
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_database_size(current_database()),"
            " coalesce(pg_relation_size(to_regclass(%s)), 0)",
            (f'"{where.schema}".embeddings_hnsw',),
        ).fetchone()
    assert row is not None
    return {"db_mb": row[0] / 2**20, "hnsw_mb": row[1] / 2**20}


def drop_schema(url: str) -> None:
    import psycopg
    from psycopg import sql

    from ragidx.store.postgres.connect import target

    where = target(url)
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(where.schema))
        )


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


# ---------------------------------------------------------------------------- child


def child(kind: str, where: str, queries_file: str, out_file: str) -> None:
    t = time.perf_counter()
    store = open_store(kind, where)
    queries = np.load(queries_file)
    store.vector_search(queries[0], K)
    cold = time.perf_counter() - t
    times, found = query_store(store, queries)
    found = rows_of(store, found)
    store.close()
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    Path(out_file).write_text(json.dumps({"cold": cold, "times": times, "found": found,
                                          "rss_kb": rss}))  # fmt: skip


def measure(kind: str, where: str, queries: np.ndarray, tmp: Path) -> dict[str, Any]:
    np.save(tmp / "q.npy", queries)
    out = tmp / "out.json"
    subprocess.run([sys.executable, __file__, "--child", kind, where, str(tmp / "q.npy"),
                    str(out)], check=True)  # fmt: skip
    return json.loads(out.read_text())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- main


def one_size(n: int, kind: str, base: Path, url: str, ef_search: list[int]) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + n)
    data = clustered(n, DIMS, rng)
    queries = queries_for(data, rng)
    truth = exact_top(data, queries)
    where = with_schema(url, f"s{n}") if kind == "postgres" else str(base / f"{n}.db")
    row: dict[str, Any] = {"size": n, "load_start": os.getloadavg()[0]}
    t = time.perf_counter()
    store = BUILDERS[kind](where, data, (*SPACE, DIMS), {"normalize": "true"}, row)
    row["build_s"] = time.perf_counter() - t
    store.close()
    vectors = Path(f"{where}-vectors")
    if kind == "sqlite":
        Path(vectors).unlink(missing_ok=True)
        rebuilt = measure(kind, where, queries[:1], base)  # its cold query rebuilds the file
        row["rebuild_s"] = rebuilt["cold"]
    got = measure(kind, where, queries, base)
    ms = sorted(x * 1000 for x in got["times"])
    hits = [len(set(f) & set(t.tolist())) for f, t in zip(got["found"], truth, strict=True)]
    row.update(
        cold_ms=got["cold"] * 1000,
        p50_ms=statistics.median(ms),
        p95_ms=ms[int(len(ms) * 0.95) - 1],
        recall=sum(hits) / (K * len(truth)),
        rss_mb=got["rss_kb"] / 1024,
    )
    if kind == "sqlite":
        row["file_mb"] = vectors.stat().st_size / 2**20 if vectors.exists() else 0.0
        row["db_mb"] = Path(where).stat().st_size / 2**20
    else:
        row.update(pg_sizes(where))
        if ef_search:
            row["ef_search"] = sweep_ef(where, queries, truth, ef_search)
    row["load_end"] = os.getloadavg()[0]
    return row


def sweep_ef(url: str, queries: np.ndarray, truth: np.ndarray, efs: list[int]) -> list[Any]:
    """p50 and recall@10 of `PostgresStore.vector_search` at each `hnsw.ef_search` (the
    store's `EF_SEARCH` replaced in this process only), in this process."""
    from ragidx.store.postgres import queries as pgq

    store, kept, out = open_store("postgres", url), pgq.EF_SEARCH, []
    try:
        for ef in efs:
            pgq.EF_SEARCH = ef
            times, found = query_store(store, queries)
            found = rows_of(store, found)
            hits = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
            out.append({"ef": ef, "p50_ms": statistics.median(times) * 1000,
                        "recall": hits / (K * len(truth))})  # fmt: skip
            print(f"    ef_search {ef}: p50 {out[-1]['p50_ms']:.2f} ms, recall@10"
                  f" {out[-1]['recall']:.3f}", flush=True)  # fmt: skip
    finally:
        pgq.EF_SEARCH = kept
        store.close()
    return out


def default_space(base: Path) -> tuple[tuple[str, str, int], dict[str, str], Path]:
    """The default offline embedder's space and settings, as `ragidx index` records them
    in a fresh SQLite index (returned too: it holds one real chunk)."""
    db, doc = base / "seed.db", base / "seed.md"
    doc.write_text("# Seed\n\nthundering herd of retries\n", encoding="utf-8")
    env = {**os.environ, "NO_COLOR": "1"}
    subprocess.run([sys.executable, "-m", "ragidx", "index", str(doc), "--db", str(db), "-q"],
                   check=True, env=env)  # fmt: skip
    store = SqliteStore.open(db)
    manifest = store.manifest()
    store.close()
    space = (manifest["provider"], manifest["model"], int(manifest["dims"]))
    settings = {k: v for k, v in manifest.items() if k not in ("provider", "model", "dims")}
    return space, settings, db


def command_env() -> dict[str, str]:
    """The environment of a timed command: bytecode compiled by the warm-up run and kept under
    the bench's cache (PYTHONPYCACHEPREFIX), as any installed Python keeps it, whatever this
    machine's PYTHONDONTWRITEBYTECODE says (without it, compiling psycopg's and ragidx's
    modules on every start adds ~0.13 s to each command)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "NO_COLOR": "1", "PYTHONPYCACHEPREFIX": str(CACHE.parent / "pycache")}


def cli_size(n: int, kind: str, base: Path, url: str) -> dict[str, Any]:
    """`ragidx search` as a whole command over an index of the default embedder's space."""
    space, settings, seed = default_space(base)
    # SQLite: into the seeded index itself. Postgres: a fresh schema, so that the HNSW index
    # is built whole when the run finishes (the seed's run would have built it over 1 vector,
    # and every later commit would then insert into it vector by vector).
    where = with_schema(url, "cli") if kind == "postgres" else str(seed)
    data = clustered(n, space[2], np.random.default_rng(SEED))
    timings: dict[str, float] = {}
    t = time.perf_counter()
    BUILDERS[kind](where, data, space, settings, timings).close()
    build = time.perf_counter() - t
    env = command_env()
    cmd = [sys.executable, "-m", "ragidx", "search", "retry storms and backoff", "--db", where,
           "--mode", "vector"]  # fmt: skip
    vector, hybrid = [], []  # taking turns; the first of each warms the caches, not counted
    for _ in range(6):
        for walls, mode in ((vector, "vector"), (hybrid, "hybrid")):
            t = time.perf_counter()
            subprocess.run([*cmd[:-1], mode], check=True, env=env, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t)
    out = {"size": n, "dims": space[2], "build_s": build, "first_s": vector[0],
           "median_s": statistics.median(vector[1:]), "hybrid_s": statistics.median(hybrid[1:]),
           **timings}  # fmt: skip
    if kind == "sqlite":
        out["file_mb"] = Path(f"{where}-vectors").stat().st_size / 2**20
    else:
        out["file_mb"] = pg_sizes(where)["db_mb"]
        drop_schema(where)
    return out


def _line(kind: str, r: dict[str, Any]) -> str:
    if kind == "sqlite":
        return (f"{r['size']:>10,} {r['build_s']:>8.1f} {r['rebuild_s']:>9.2f} {r['cold_ms']:>8.0f}"
                f" {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['recall']:>6.3f}"
                f" {r['file_mb']:>8.0f} {r['db_mb']:>7.0f} {r['rss_mb']:>7.0f}"
                f"   {r['load_start']:.1f} -> {r['load_end']:.1f}")  # fmt: skip
    return (f"{r['size']:>10,} {r['load_s']:>7.1f} {r['hnsw_s']:>7.1f} {r['cold_ms']:>8.0f}"
            f" {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['recall']:>6.3f}"
            f" {r['db_mb']:>7.0f} {r['hnsw_mb']:>8.0f} {r['rss_mb']:>7.0f}"
            f"   {r['load_start']:.1f} -> {r['load_end']:.1f}")  # fmt: skip


_HEADS = {
    "sqlite": f"{'size':>10} {'build s':>8} {'rebuild s':>9} {'cold ms':>8} {'p50 ms':>7}"
    f" {'p95 ms':>7} {'recall':>6} {'file MB':>8} {'db MB':>7} {'RSS MB':>7}   load",
    "postgres": f"{'size':>10} {'load s':>7} {'hnsw s':>7} {'cold ms':>8} {'p50 ms':>7}"
    f" {'p95 ms':>7} {'recall':>6} {'db MB':>7} {'hnsw MB':>8} {'RSS MB':>7}   load",
}


def run_all(args: argparse.Namespace, base: Path, url: str) -> None:
    print(_HEADS[args.store])
    rows = []
    for n in (int(s) for s in args.sizes.split(",") if s):
        r = one_size(n, args.store, base, url, [int(e) for e in args.ef_search.split(",") if e])
        rows.append(r)
        print(_line(args.store, r), flush=True)
        if args.store == "postgres":
            if not args.keep:
                drop_schema(with_schema(url, f"s{n}"))
        else:
            for p in base.glob(f"{n}.db*"):
                p.unlink()
    cli = cli_size(args.cli_size, args.store, base, url) if args.cli_size else None
    if cli:
        print(f"ragidx search --mode vector at {cli['size']:,} chunks of {cli['dims']} dims"
              f" (build {cli['build_s']:.0f} s, {'file' if args.store == 'sqlite' else 'db'}"
              f" {cli['file_mb']:.0f} MB): first {cli['first_s']:.2f} s, median of 5"
              f" {cli['median_s']:.2f} s; hybrid, median of 5 {cli['hybrid_s']:.2f} s",
              flush=True)  # fmt: skip
    print(f"load {os.getloadavg()[0]:.2f} at the end")
    if args.out:
        Path(args.out).write_text(json.dumps({"store": args.store, "sizes": rows, "cli": cli},
                                             indent=1))  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--cli-size", type=int, default=100_000)
    ap.add_argument("--store", default="sqlite", choices=sorted(BUILDERS))
    ap.add_argument("--url", help="a Postgres server's database (default: a throwaway one)")
    ap.add_argument(
        "--ef-search", default="", help="Postgres: also sweep hnsw.ef_search (40,100,...)"
    )
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=CACHE))
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; load {load:.2f}")
    try:
        if args.store == "postgres" and not args.url:
            from pg import postgres

            with postgres() as url:
                run_all(args, base, url)
        else:
            run_all(args, base, args.url or "")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
