"""ragidx against the fault-injecting test server: batching, budgets, overload.

    uv run python bench/server_bench.py [--files 2000]

Scenarios, each a fresh index and a fresh server on 127.0.0.1:
  (a) small files, 20 ms latency: batches span files;
  (b) a request budget the server enforces (429 + Retry-After + x-ratelimit headers),
      once with ragidx told the budget (--rpm) and once left to the headers;
  (c) an overloaded server (2 requests at a time, 429 without Retry-After, like TEI).
Prints wall seconds, chunks/s, requests, mean inputs per request, 429s, and the fraction of
the budget or of the server's capacity achieved.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ragidx.testing.server import Faults, serve

DIMS = 64


def make_tree(root: Path, files: int) -> None:
    for i in range(files):
        folder = root / f"d{i % 40:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"n{i:05d}.md").write_text(f"# Note {i}\n\nA short note, number {i}.\n")


def run(work: Path, faults: Faults, *args: str) -> dict[str, float]:
    db = work / "idx.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with serve(faults) as server:
        cmd = [
            sys.executable, "-m", "ragidx", "index", "tree", "--db", str(db), "--json",
            "--no-progress", "--base-url", server.url + "/v1", "--dimensions", str(DIMS), *args,
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        counters = server.counters
    if done.returncode != 0:
        raise SystemExit(f"ragidx exited {done.returncode}: {done.stderr[-500:]}")
    summary = json.loads(done.stdout.splitlines()[-1])
    served = counters.statuses.get(200, 0)
    return {
        "wall": wall,
        "chunks": summary["chunks"],
        "requests": counters.requests,
        "served": served,
        "inputs_per_request": counters.inputs / max(served, 1),
        "429s": counters.statuses.get(429, 0),
        "tokens": counters.tokens,
        "estimated": summary["tokens"],
        "rate": served / summary["seconds"],
        "seconds": summary["seconds"],
    }


def show(name: str, r: dict[str, float], target: str = "") -> None:
    print(
        f"{name:<28} {r['wall']:6.2f} s  {r['chunks'] / r['wall']:8.0f} chunks/s  "
        f"{r['requests']:5.0f} requests  {r['inputs_per_request']:6.1f} inputs/req  "
        f"{r['429s']:4.0f} x429  {target}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragidx-http-bench-"))
    try:
        make_tree(work / "tree", args.files)
        print(f"{args.files:,} small files; server on 127.0.0.1")
        a = run(work, Faults(dims=DIMS, latency=0.02), "--batch-size", "64")
        show("(a) 20 ms, batch 64", a, "(batch-size 64)")

        rpm = 1200  # 20 a second
        for label, extra in (
            ("(b) rpm 1200, --rpm", ["--rpm", str(rpm)]),
            ("(b) rpm 1200, headers", []),
        ):
            b = run(work, Faults(dims=DIMS, rpm=rpm), "--batch-size", "8", *extra)
            achieved = b["served"] / b["seconds"] / (rpm / 60)
            show(label, b, f"{achieved:.0%} of the budget")
        tpm = 60_000  # 1,000 tokens a second, counted by the server as 4 characters a token
        for label, extra in (
            ("(b) tpm 60000, --tpm", ["--tpm", str(tpm)]),
            ("(b) tpm 60000, headers", []),
        ):
            b = run(work, Faults(dims=DIMS, tpm=tpm), "--batch-size", "8", *extra)
            served = b["tokens"] / b["seconds"] / (tpm / 60)
            ours = b["estimated"] / b["seconds"] / (tpm / 60)
            show(label, b, f"{served:.0%} of the budget by the server's count, {ours:.0%} by ours")

        capacity, latency = 2, 0.05
        c = run(
            work,
            Faults(dims=DIMS, capacity=capacity, latency=latency),
            "--batch-size",
            "8",
            "--concurrency",
            "8",
        )
        achieved = c["served"] / c["seconds"] / (capacity / latency)
        show("(c) overloaded, capacity 2", c, f"{achieved:.0%} of capacity")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
