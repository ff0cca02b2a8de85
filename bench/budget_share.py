"""A budget shared by many workers: N `ragidx index --shard K/N --rpm R` processes at once
against one test server, and the requests per minute they made together.

    uv run python bench/budget_share.py [--parts 2] [--rpm 120] [--files 400] [--window 20]

`--rpm` is the API key's budget: each of the N parts paces at R/N (`ragidx index --help`).
The bench counts the server's requests every 50 ms while the parts run, and prints the most
requests any window of `--window` seconds saw, against what the budget allows in such a window
(R x window / 60, plus the second's burst each part's token bucket earns when idle),
and the rate over the whole run. One request per file (`--batch-size 1`, small files), so the
run lasts long enough for the windows to mean something.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ragidx.testing.server import Faults, serve


def _command(root: Path, tmp: Path, url: str, part: int, args: argparse.Namespace) -> list[str]:
    # Each part its own SQLite index: SQLite has one writer, and the parts would wait for
    # each other (Postgres is the store for parts that run at once); the budget is the point.
    return [
        sys.executable, "-m", "ragidx", "index", str(root), "--db", str(tmp / f"idx{part}.db"),
        "--shard", f"{part}/{args.parts}", "--rpm", str(args.rpm),
        "--provider", "openai", "--base-url", f"{url}/v1", "--model", "m",
        "--dimensions", "32", "--batch-size", "1", "--quiet", "--no-progress",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", type=int, default=2)
    parser.add_argument("--rpm", type=float, default=120)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragidx-budget-") as tmp:
        root = Path(tmp) / "docs"
        for i in range(args.files):
            (root / f"d{i % 10}").mkdir(parents=True, exist_ok=True)
            (root / f"d{i % 10}" / f"page{i}.md").write_text(f"# Page {i}\n\nLine {i} of text.\n")
        with serve(Faults(dims=32)) as server:
            samples: list[tuple[float, int]] = []
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    samples.append((time.perf_counter(), server.counters.requests))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            parts = range(1, args.parts + 1)
            commands = [_command(root, Path(tmp), server.url, k, args) for k in parts]
            procs = [subprocess.Popen(c, stderr=subprocess.PIPE) for c in commands]
            for proc in procs:
                _, err = proc.communicate()
                if proc.returncode != 0:
                    raise SystemExit(f"a part exited {proc.returncode}: {err[-500:]!r}")
            done.set()
            sampler.join()
        total = server.counters.requests
    start, end = samples[0][0], samples[-1][0]
    most = 0
    for i, (t0, n0) in enumerate(samples):
        j = i
        while j + 1 < len(samples) and samples[j + 1][0] - t0 <= args.window:
            j += 1
        most = max(most, samples[j][1] - n0)
    allowed = args.rpm * args.window / 60
    print(f"{args.parts} parts, --rpm {args.rpm:g} (each part {args.rpm / args.parts:g}/min)")
    print(f"requests: {total:,} in {end - start:.1f} s: {total / (end - start) * 60:.1f}/min")
    print(
        f"most in any {args.window:g} s window: {most} (the budget allows {allowed:.0f},"
        f" plus a second's burst a part: {args.rpm / 60:g})"
    )


if __name__ == "__main__":
    main()
