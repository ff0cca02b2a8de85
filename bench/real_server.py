"""ragidx and `llm embed-multi` through a real server: Infinity, all-MiniLM-L6-v2, on the CPU.

    uv run python bench/real_server.py [--repeat 3] [--batch-size 32] [--chunk-tokens 200]

Both embed the same inputs: ragidx indexes sample_docs (chunks of --chunk-tokens, the README's
Infinity recipe), and llm embeds exactly the inputs ragidx sent, read from a JSON file, so the
model does the same work for each. llm reaches the server through OPENAI_BASE_URL with its
model `3-small` (Infinity answers any model name with the one it serves). Both send batches
of --batch-size. The runs alternate, each on a fresh database (ragidx's cache starts empty),
and the medians are quoted. On a server this slow (about 20 inputs a second on 2 cores) the
model is the bottleneck: the two should be within a few percent, and ragidx never slower.

The server comes from `ragidx.testing.infinity` (built on first use, about 90 s); llm from
the same cached virtualenv as bench/compare.py.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

from compare import CACHE, Run, child_env, ensure_venv, timed  # bench/: scripts run from here

from ragidx.testing.infinity import MODEL, serve

ROOT = Path(__file__).resolve().parent.parent


def ragidx_run(url: str, work: Path, n: int, args: argparse.Namespace) -> tuple[Run, int]:
    cmd = [
        sys.executable, "-m", "ragidx", "index", str(ROOT / "sample_docs"),
        "--db", str(work / f"ragidx{n}.db"), "--provider", "openai", "--base-url", f"{url}/v1",
        "--model", MODEL, "--batch-size", str(args.batch_size),
        "--chunk-tokens", str(args.chunk_tokens), "--json", "--no-progress",
    ]  # fmt: skip
    run, code, out, err = timed(cmd, child_env(work, url, args.pycache), work)
    if code != 0:
        raise SystemExit(f"ragidx exited {code}: {err[-800:]}")
    summary = json.loads(out.splitlines()[-1])
    assert summary["failed"] == 0 and summary["embedded"] == summary["chunks"], summary
    return run, int(summary["chunks"])


def inputs_of(db: Path, work: Path) -> Path:
    """What ragidx sent, one JSON object per input, as `llm embed-multi` reads them."""
    cmd = [sys.executable, "-m", "ragidx", "export", "--db", str(db), "--vectors"]
    _, code, out, err = timed(cmd, child_env(work, "", CACHE / "pycache"), work)
    if code != 0:
        raise SystemExit(f"ragidx export exited {code}: {err[-800:]}")
    records = [json.loads(line) for line in out.splitlines()]
    rows = [{"id": str(i), "content": r.get("input", r["text"])} for i, r in enumerate(records)]
    path = work / "inputs.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def llm_run(
    llm: Path, url: str, inputs: Path, work: Path, n: int, args: argparse.Namespace
) -> tuple[Run, int]:
    db = work / f"llm{n}.db"
    cmd = [
        str(llm), "embed-multi", "chunks", str(inputs), "-m", "3-small",
        "--batch-size", str(args.batch_size), "-d", str(db),
    ]  # fmt: skip
    run, code, _, err = timed(cmd, child_env(work, url, args.pycache), work)
    if code != 0:
        raise SystemExit(f"llm exited {code}: {err[-800:]}")
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM embeddings").fetchone()
    return run, int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk-tokens", type=int, default=200)
    parser.add_argument("--venvs", type=Path, default=CACHE / "venvs")
    args = parser.parse_args()
    args.pycache = CACHE / "pycache"
    llm = ensure_venv(args.venvs, "llm").parent / "llm"
    results: dict[str, list[tuple[Run, int]]] = {"ragidx": [], "llm": []}
    with tempfile.TemporaryDirectory(prefix="ragidx-real-") as name, serve() as v1:
        work, url = Path(name), v1.removesuffix("/v1")
        print(f"Infinity serves {MODEL} at {v1}")
        ragidx_run(url, work, 99, args)  # warm-up: bytecode, the server's first batches
        inputs = inputs_of(work / "ragidx99.db", work)
        llm_run(llm, url, inputs, work, 99, args)
        for n in range(args.repeat):
            results["ragidx"].append(ragidx_run(url, work, n, args))
            results["llm"].append(llm_run(llm, url, inputs, work, n, args))
    print(f"\n{'tool':8} {'inputs':>7} {'wall s':>7} {'CPU s':>6} {'inputs/s':>9}")
    rates = {}
    for tool, runs in results.items():
        wall = statistics.median(r.wall for r, _ in runs)
        cpu = statistics.median(r.cpu for r, _ in runs)
        count = runs[0][1]
        rates[tool] = count / wall
        print(f"{tool:8} {count:>7,} {wall:>7.2f} {cpu:>6.2f} {rates[tool]:>9.1f}")
    walls = {t: [f"{r.wall:.2f}" for r, _ in runs] for t, runs in results.items()}
    print(f"\nragidx / llm, inputs per second: {rates['ragidx'] / rates['llm']:.3f}")
    print(f"(medians of {args.repeat} alternating runs; all wall times: {walls})")


if __name__ == "__main__":
    main()
