"""ragidx with default flags against a server that computes one request at a time (issue 13).

    uv run python bench/slow_server.py [--files 2000] [--rate 25] [--limit 600] [-- FLAGS]

A fresh test server (`ragidx.testing.server`, `serial_rate`) computes RATE inputs a second,
one request at a time with the rest queued, and computes every request it was sent, also
those whose client gave up. FILES one-chunk files (an abstract of about 180 estimated tokens
each) are indexed by `ragidx index` with default flags, or with FLAGS after `--`.

Prints the wall seconds, the exit code, the files indexed and failed, the requests, and the
inputs the server computed against the corpus's. Target: exit 0 within 1.5x the server's
capacity time (FILES / RATE) plus 15 s, and at most 1.2x the corpus's inputs computed.
`--limit` stops a run that takes longer (the figures are then those at the stop).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ragidx.testing.server import Faults, serve

WORDS = (
    "protein cell model data analysis method result effect sample study network signal "
    "energy field phase rate growth measure structure response system theory process"
).split()


def make_corpus(root: Path, files: int) -> None:
    rng = random.Random(13)
    for i in range(files):
        folder = root / f"d{i % 40:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        words = " ".join(rng.choice(WORDS) for _ in range(100))
        (folder / f"a{i:05d}.txt").write_text(f"Abstract {i}. {words}.\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=25.0, help="inputs a second")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds before a stop")
    parser.add_argument("flags", nargs="*", help="ragidx index flags (after --)")
    args = parser.parse_args()
    capacity = args.files / args.rate
    target = 1.5 * capacity + 15
    with tempfile.TemporaryDirectory(prefix="ragidx-slow-") as tmp:
        work = Path(tmp)
        make_corpus(work / "corpus", args.files)
        with serve(Faults(serial_rate=args.rate)) as server:
            cmd = [
                sys.executable, "-m", "ragidx", "index", "corpus", "--db", "idx.db", "--json",
                "--no-progress", "--provider", "openai", "--base-url", server.url + "/v1",
                "--model", "all-MiniLM-L6-v2", *args.flags,
            ]  # fmt: skip
            started = time.perf_counter()
            with open(work / "out.jsonl", "w") as out, open(work / "err.txt", "w") as err:
                proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=err)
                try:
                    code: int | str = proc.wait(timeout=args.limit)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    code = f"stopped at {args.limit:g} s"
            wall = time.perf_counter() - started
            counters = server.counters
            computed, requests = counters.inputs, counters.requests
        records = [json.loads(line) for line in (work / "out.jsonl").read_text().splitlines()]
        files = [r for r in records if r.get("event") == "file"]
        indexed = sum(r["status"] == "indexed" for r in files)
        failed = [r for r in files if r["status"] == "failed"]
        summary = next((r for r in records if r.get("event") == "summary"), {})
    corpus = args.files  # one chunk a file
    print(f"server: one request at a time, {args.rate:g} inputs/s; capacity {capacity:.0f} s")
    print(f"flags: {' '.join(args.flags) or '(defaults)'}")
    print(f"wall {wall:.1f} s (target <= {target:.0f} s), exit {code}")
    print(f"files {indexed} indexed, {len(failed)} failed of {args.files}")
    if failed:
        print(f"  first failure: {failed[0]['reason']}")
    print(f"requests {requests} (ragidx counted {summary.get('requests', '?')})")
    print(f"computed inputs {computed} of a corpus of {corpus}: {computed / corpus:.2f}x")
    ok = code == 0 and wall <= target and computed <= 1.2 * corpus
    print("target met" if ok else "target missed")


if __name__ == "__main__":
    main()
