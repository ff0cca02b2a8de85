"""Vector search at scale through a real store (issue 18, item 6).

    uv run python bench/search_scale.py [--sizes 10000,100000,1000000] [--cli-size 100000]
        [--store sqlite] [--keep] [--out FILE.json]

For each size: an index of N chunks of 384 dimensions (clustered unit vectors as in
bench/vector_index.py, seeded) built through the real `Store` API: one `FileWrite` per 20
chunks with the `Embeddings` they use, in commits of 5,000 chunks (on SQLite each commit
also appends to the vector file beside the index). Then, from a fresh child process (its own
peak RSS): one cold query (the file mapped, or rebuilt where missing), 200 queries one at a
time (p50, p95), recall@10 against exact numpy over the same vectors. Also the time to
rebuild the vector file from nothing (deleted, then one search).

With --cli-size: an index of that many chunks in the default offline embedder's space (its
model and dims, 1,024), so that `ragidx search QUERY --db X` accepts it; the whole command's
wall time, median of 5 runs (after one that maps the file).

Backends: a `build_<store>` function makes the index and returns an open `Store`; queries
go through `query_store`, which takes any `Store`. `--store postgres --url URL` is for the
Postgres store when it lands (not built here).
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


def build_sqlite(
    db: Path, data: np.ndarray, space: tuple[str, str, int], settings: dict[str, str]
) -> Store:
    """Add `data` to the index at `db` (chunk i uses vector i), through the Store API."""
    store = SqliteStore.open(db)
    store.claim_manifest(*space, settings)
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
    store.finish_run(run, "completed", {"seconds": 0})
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


BUILDERS: dict[str, Callable[..., Store]] = {"sqlite": build_sqlite}


def open_store(kind: str, where: str) -> Store:
    if kind == "sqlite":
        return SqliteStore.open_for_reading(Path(where))
    raise SystemExit(f"--store {kind}: not built yet")


# ---------------------------------------------------------------------------- child


def child(kind: str, where: str, queries_file: str, out_file: str) -> None:
    t = time.perf_counter()
    store = open_store(kind, where)
    queries = np.load(queries_file)
    store.vector_search(queries[0], K)
    cold = time.perf_counter() - t
    times, found = query_store(store, queries)
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


def one_size(n: int, kind: str, base: Path) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + n)
    data = clustered(n, DIMS, rng)
    queries = queries_for(data, rng)
    truth = exact_top(data, queries)
    db = base / f"{n}.db"
    t = time.perf_counter()
    store = BUILDERS[kind](db, data, (*SPACE, DIMS), {"normalize": "true"})
    build = time.perf_counter() - t
    store.close()
    vectors = Path(f"{db}-vectors")
    row: dict[str, Any] = {"size": n, "build_s": build}
    Path(vectors).unlink(missing_ok=True)
    rebuilt = measure(kind, str(db), queries[:1], base)  # its cold query rebuilds the file
    row["rebuild_s"] = rebuilt["cold"]
    got = measure(kind, str(db), queries, base)
    ms = sorted(x * 1000 for x in got["times"])
    hits = [len(set(f) & {int(i) + 1 for i in t}) for f, t in zip(got["found"], truth, strict=True)]
    row.update(
        cold_ms=got["cold"] * 1000,
        p50_ms=statistics.median(ms),
        p95_ms=ms[int(len(ms) * 0.95) - 1],
        recall=sum(hits) / (K * len(truth)),
        file_mb=vectors.stat().st_size / 2**20 if vectors.exists() else 0.0,
        db_mb=db.stat().st_size / 2**20,
        rss_mb=got["rss_kb"] / 1024,
    )
    return row


def cli_size(n: int, base: Path) -> dict[str, Any]:
    """`ragidx search` as a whole command over an index of the default embedder's space."""
    db, doc = base / f"cli-{n}.db", base / "seed.md"
    doc.write_text("# Seed\n\nthundering herd of retries\n", encoding="utf-8")
    env = {**os.environ, "NO_COLOR": "1"}
    ragidx = [sys.executable, "-m", "ragidx"]
    subprocess.run([*ragidx, "index", str(doc), "--db", str(db), "-q"], check=True, env=env)
    store = SqliteStore.open(db)
    manifest = store.manifest()
    store.close()
    space = (manifest["provider"], manifest["model"], int(manifest["dims"]))
    settings = {k: v for k, v in manifest.items() if k not in ("provider", "model", "dims")}
    data = clustered(n, space[2], np.random.default_rng(SEED))
    t = time.perf_counter()
    BUILDERS["sqlite"](db, data, space, settings).close()
    build = time.perf_counter() - t
    cmd = [*ragidx, "search", "retry storms and backoff", "--db", str(db), "--mode", "vector"]
    walls = []
    for _ in range(6):  # the first maps the file into the page cache; not counted
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
    hybrid = [*cmd[:-2]]
    t = time.perf_counter()
    subprocess.run(hybrid, check=True, env=env, stdout=subprocess.DEVNULL)
    return {"size": n, "dims": space[2], "build_s": build, "first_s": walls[0],
            "median_s": statistics.median(walls[1:]), "hybrid_s": time.perf_counter() - t,
            "file_mb": Path(f"{db}-vectors").stat().st_size / 2**20}  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--cli-size", type=int, default=100_000)
    ap.add_argument("--store", default="sqlite", choices=sorted(BUILDERS))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=CACHE))
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; load {load:.2f}")
    head = (f"{'size':>10} {'build s':>8} {'rebuild s':>9} {'cold ms':>8} {'p50 ms':>7}"
            f" {'p95 ms':>7} {'recall':>6} {'file MB':>8} {'db MB':>7} {'RSS MB':>7}")  # fmt: skip
    print(head)
    rows = []
    try:
        for n in (int(s) for s in args.sizes.split(",") if s):
            r = one_size(n, args.store, base)
            rows.append(r)
            line = (f"{n:>10,} {r['build_s']:>8.1f} {r['rebuild_s']:>9.2f} {r['cold_ms']:>8.0f}"
                    f" {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['recall']:>6.3f}"
                    f" {r['file_mb']:>8.0f} {r['db_mb']:>7.0f} {r['rss_mb']:>7.0f}")  # fmt: skip
            print(line, flush=True)
            for p in base.glob(f"{n}.db*"):
                p.unlink()
        cli = cli_size(args.cli_size, base) if args.cli_size else None
        if cli:
            print(f"ragidx search --mode vector at {cli['size']:,} chunks of {cli['dims']} dims"
                  f" (build {cli['build_s']:.0f} s, file {cli['file_mb']:.0f} MB): first"
                  f" {cli['first_s']:.2f} s, median of 5 {cli['median_s']:.2f} s;"
                  f" hybrid {cli['hybrid_s']:.2f} s")  # fmt: skip
        print(f"load {os.getloadavg()[0]:.2f} at the end")
        if args.out:
            Path(args.out).write_text(json.dumps({"sizes": rows, "cli": cli}, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
