"""A fault on the first answer of a run: requests, seconds and outcome (issue 13, part 1).

    uv run python bench/first_answer.py [--faults ragged,wrong_dims,...] [--dims 64]

For each fault (and none), a fresh test server gives that fault to its first answer only, and
`ragidx index sample_docs --provider openai --base-url URL --model m --json` runs as a child
process into a fresh index, as a new user would run it (no `--dimensions`). Printed per run:
the server's requests and statuses, wall seconds, exit code, files indexed and failed, and
how many stored vectors are exactly the server's vector for their chunk.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ragidx.testing.server import ANSWER_FAULTS, Faults, expected_vector, serve

ROOT = Path(__file__).resolve().parent.parent


def exact_vectors(db: Path, dims: int) -> tuple[int, int]:
    """(vectors stored, of which exactly the server's for their chunk's input)."""
    if not db.exists():
        return 0, 0
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT coalesce(c.input, c.text), v.vector FROM chunks c"
            " JOIN vectors v ON v.chunk_id = c.id"
        ).fetchall()
    finally:
        conn.close()
    good = 0
    for text, blob in rows:
        vector = np.frombuffer(blob, "<f4")
        good += vector.size == dims and np.allclose(vector, expected_vector(text, dims), atol=1e-6)
    return len(rows), good


def run_once(fault: str | None, dims: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "sample_docs", work / "sample_docs")
        with serve(Faults(dims=dims, at={1: fault} if fault else {})) as server:
            args = [
                sys.executable, "-m", "ragidx", "index", "sample_docs", "--provider", "openai",
                "--base-url", server.url + "/v1", "--model", "m", "--json", "--no-progress",
            ]  # fmt: skip
            started = time.monotonic()
            proc = subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=600)
            seconds = time.monotonic() - started
            requests, statuses = server.counters.requests, dict(server.counters.statuses)
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        summary = next((r for r in lines if r.get("event") == "summary"), {})
        reasons = {r.get("reason") for r in lines if r.get("status") == "failed"}
        stored, exact = exact_vectors(work / ".ragidx" / "index.db", dims)
    return {
        "fault": fault or "none",
        "requests": requests,
        "statuses": statuses,
        "seconds": round(seconds, 2),
        "exit": proc.returncode,
        "indexed": summary.get("indexed"),
        "failed": summary.get("failed"),
        "vectors": stored,
        "exact": exact,
        "reasons": sorted(r for r in reasons if r),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default=",".join(ANSWER_FAULTS))
    parser.add_argument("--dims", type=int, default=64)
    args = parser.parse_args()
    faults: list[str | None] = [None, *args.faults.split(",")]
    print(f"{'first answer':<12} {'requests':>8} {'seconds':>8} {'exit':>4} {'indexed':>7}"
          f" {'failed':>6} {'exact vectors':>14}  first failure")  # fmt: skip
    for fault in faults:
        r = run_once(fault, args.dims)
        reason = r["reasons"][0] if r["reasons"] else ""  # type: ignore[index]
        print(
            f"{r['fault']:<12} {r['requests']:>8} {r['seconds']:>8} {r['exit']:>4}"
            f" {r['indexed']!s:>7} {r['failed']!s:>6} {r['exact']!s:>6}/{r['vectors']!s:<7}"
            f"  {reason}",
            flush=True,
        )


if __name__ == "__main__":
    main()
