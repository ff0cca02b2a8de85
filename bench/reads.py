"""Reading a corpus's files: aiofiles, one thread hop per file, and worker processes.

    uv run --with aiofiles python bench/reads.py [--corpus DIR] [--repeat 5] [--inflight 4]
        [--workers 2] [--batch 64]

aiofiles is not a dependency of ragidx: `uv run --with` brings it for this run only (without
it, its rows are skipped). The corpus is bench/compare.py's (5,000 Markdown files, 29.8 MB;
run compare.py once to make it). The file list is made before the clock, the page cache is
warmed by one untimed pass, then each way reads every file, taking turns, --repeat times; it
prints the median wall seconds, the spread, and MB/s. The ways:

  sync           one thread, `path.read_bytes()` in a loop: the floor.
  to_thread      asyncio, --inflight files at once, each `await asyncio.to_thread(
                 path.read_bytes)`: one hop to a thread per file (ragidx's readers).
  aiofiles       asyncio, --inflight files at once, each `async with aiofiles.open(path,
                 "rb") as f: await f.read()`: a hop for open, read and close.
  processes      a ProcessPoolExecutor of --workers processes (started and warmed before the
                 clock), each reading batches of --batch files and sending the bytes back.
  processes-len  the same, sending back only the sizes: reading in a worker that keeps the
                 text (as one that also chunks it would), without the bytes' trip back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CORPUS = Path.home() / ".cache" / "ragidx-bench" / "corpora" / "md-5000"


def read_sync(paths: list[Path]) -> int:
    return sum(len(p.read_bytes()) for p in paths)


async def _bounded(paths: list[Path], inflight: int, read: Callable[[Path], object]) -> int:
    """Reads every path with `inflight` tasks pulling from one iterator; the bytes read."""
    it = iter(paths)
    total = 0

    async def worker() -> None:
        nonlocal total
        for path in it:
            data = await read(path)  # type: ignore[misc]
            total += len(data)  # type: ignore[arg-type]

    async with asyncio.TaskGroup() as group:
        for _ in range(inflight):
            group.create_task(worker())
    return total


def read_to_thread(paths: list[Path], inflight: int) -> int:
    async def one(path: Path) -> bytes:
        return await asyncio.to_thread(path.read_bytes)

    return asyncio.run(_bounded(paths, inflight, one))


def read_aiofiles(paths: list[Path], inflight: int) -> int:
    import aiofiles

    async def one(path: Path) -> bytes:
        async with aiofiles.open(path, "rb") as f:
            return await f.read()

    return asyncio.run(_bounded(paths, inflight, one))


def _batch_bytes(paths: list[str]) -> list[bytes]:
    out = []
    for path in paths:
        with open(path, "rb") as f:
            out.append(f.read())
    return out


def _batch_sizes(paths: list[str]) -> list[int]:
    return [len(data) for data in _batch_bytes(paths)]


def read_processes(pool: ProcessPoolExecutor, paths: list[Path], batch: int, back: bool) -> int:
    names = [str(p) for p in paths]
    batches = [names[i : i + batch] for i in range(0, len(names), batch)]
    if back:
        return sum(len(d) for got in pool.map(_batch_bytes, batches) for d in got)
    return sum(n for got in pool.map(_batch_sizes, batches) for n in got)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--inflight", type=int, default=4, help="ragidx's default --readers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    paths = sorted(args.corpus.rglob("*.md"))
    if not paths:
        raise SystemExit(f"no .md files under {args.corpus}: run bench/compare.py once")
    size = read_sync(paths)  # warms the page cache
    ways: dict[str, Callable[[], int]] = {
        "sync": lambda: read_sync(paths),
        "to_thread": lambda: read_to_thread(paths, args.inflight),
    }
    try:
        import aiofiles  # noqa: F401
    except ImportError:
        print("aiofiles: not installed, skipped (uv run --with aiofiles ...)")
    else:
        ways["aiofiles"] = lambda: read_aiofiles(paths, args.inflight)
    started = time.perf_counter()
    pool = ProcessPoolExecutor(args.workers)
    list(pool.map(_batch_sizes, [[] for _ in range(args.workers * 4)]))
    pool_start = time.perf_counter() - started
    ways["processes"] = lambda: read_processes(pool, paths, args.batch, back=True)
    ways["processes-len"] = lambda: read_processes(pool, paths, args.batch, back=False)
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeat):
        for name, way in ways.items():
            began = time.perf_counter()
            got = way()
            seconds[name].append(time.perf_counter() - began)
            if got != size:
                raise SystemExit(f"{name} read {got:,} bytes, not {size:,}")
    pool.shutdown()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{len(paths):,} files, {size / 1e6:.1f} MB, warm page cache; median of {args.repeat};"
        f" {args.inflight} in flight (asyncio), {args.workers} processes, batches of"
        f" {args.batch}; pool start and warm-up {pool_start * 1000:.0f} ms (not timed);"
        f" {os.cpu_count()} cores; load average {load}"
    )
    base = statistics.median(seconds["sync"])
    print(f"{'way':<14} {'median s':>8} {'MB/s':>7} {'x sync':>7}  each run")
    for name, runs in seconds.items():
        median = statistics.median(runs)
        each = ", ".join(f"{s:.3f}" for s in runs)
        print(f"{name:<14} {median:8.3f} {size / 1e6 / median:7.0f} {median / base:7.2f}  {each}")


if __name__ == "__main__":
    main()
