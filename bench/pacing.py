"""How much of a server's rate budget ragidx uses, told the budget (--rpm/--tpm) or not.

    uv run python bench/pacing.py [--files 400] [--window 5] [--only requests,tokens]

Issue 13's repro: `ragidx index tree --rpm 600 --batch-size 2` against a test server that
admits 50 requests per sliding 5-second window and says so in `x-ratelimit-*` headers, with
resets in OpenAI's meaning (the time until the window's whole usage has expired); then the
same left to the headers alone; then a token budget likewise (30,000 a minute, 2,500 per
window, about 80 tokens a request). Each budget is run under both reset meanings: the sliding
window ("window") and the one-second bucket whose reset is the time until it is full again
("bucket", the test server's default). Every run is a fresh index and a fresh server.

Prints, for each run: wall seconds, answers and 429s the server gave, requests (or tokens) a
second, and that rate as a share of the budget. A run that starts with the server's window
full may spend it at once, so a short run can pass 100%.
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
RPM = 600  # 10 a second: 50 per 5-second window
TPM = 30_000  # 500 tokens a second, counted by the server as four characters a token
WORDS = 36  # a file of about 40 tokens by the server's count: 80 a request of two


def make_tree(root: Path, files: int) -> None:
    for i in range(files):
        folder = root / f"d{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        words = " ".join(f"w{(i * 7 + j) % 97:02d}" for j in range(WORDS))
        (folder / f"n{i:05d}.md").write_text(f"note {i}: {words}\n", encoding="utf-8")


def run(work: Path, faults: Faults, *args: str) -> dict[str, float]:
    db = work / "idx.db"
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with serve(faults) as server:
        cmd = [
            sys.executable, "-m", "ragidx", "index", "tree", "--db", str(db), "--json",
            "--no-progress", "--provider", "openai", "--base-url", server.url + "/v1",
            "--model", "m", "--dimensions", str(DIMS), *args,
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        counters = server.counters
    if done.returncode != 0:
        raise SystemExit(f"ragidx exited {done.returncode}: {done.stderr[-500:]}")
    summary = json.loads(done.stdout.splitlines()[-1])
    return {
        "wall": wall,
        "seconds": summary["seconds"],
        "served": counters.statuses.get(200, 0),
        "429s": counters.statuses.get(429, 0),
        "tokens": counters.tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--window", type=float, default=5.0, help="seconds")
    parser.add_argument("--only", default="requests,tokens")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragidx-pacing-bench-"))
    try:
        make_tree(work / "tree", args.files)
        print(f"{args.files:,} one-chunk files, batches of 2; server on 127.0.0.1")
        print(f"{'budget':<10} {'reset':<7} {'ragidx told':<12} {'wall':>7} {'answers':>8}"
              f" {'429s':>5} {'rate':>14} {'share':>6}")  # fmt: skip
        for unit in args.only.split(","):
            per_minute = RPM if unit == "requests" else TPM
            for meaning, window in (("window", args.window), ("bucket", None)):
                budget = {"rpm" if unit == "requests" else "tpm": per_minute}
                faults = Faults(dims=DIMS, budget_window=window, **budget)
                flag = "--rpm" if unit == "requests" else "--tpm"
                for told, extra in ((f"{flag} {per_minute}", [flag, str(per_minute)]),
                                    ("headers", [])):  # fmt: skip
                    r = run(work, faults, "--batch-size", "2", *extra)
                    spent = r["served"] if unit == "requests" else r["tokens"]
                    rate = spent / r["seconds"]
                    share = rate / (per_minute / 60)
                    label = "req/s" if unit == "requests" else "tok/s"
                    print(
                        f"{unit:<10} {meaning:<7} {told:<12} {r['wall']:6.2f}s"
                        f" {r['served']:8.0f} {r['429s']:5.0f} {rate:8.2f} {label}"
                        f" {share:6.0%}",
                        flush=True,
                    )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
