"""Kill `ragidx index` with SIGKILL at random moments many times; check the index each time.

    uv run python bench/soak.py [--kills 200] [--files 1500] [--latency 0.2] [--seed 5]
    uv run python bench/soak.py --workers 4 [--kills 200] ...   # N parts into one Postgres

The same check as the CI crash test (ragidx/testing/soak.py), for longer: after every kill
the index passes `PRAGMA integrity_check` and holds each file as one whole version with all
its vectors; a last run completes it, with every vector exactly the server's. Prints the
kills, the checks passed, and the inputs the server embedded beyond the distinct inputs
cached (what was in flight at the kills).

With `--workers N`, N `--shard` parts index one tree into one Postgres (a server of its own,
`bench/pg.py`) and are killed together, as the CI test across workers does
(`ragidx.testing.pg_soak`): the checks also find duplicated files and runs left stuck.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ragidx.testing.server import Faults, serve
from ragidx.testing.soak import make_corpus, soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--files", type=int, default=1500)
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds a request")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0, help="N parts into one Postgres")
    args = parser.parse_args()
    if args.workers:
        _soak_workers(args)
        return
    with tempfile.TemporaryDirectory(prefix="ragidx-soak-") as tmp:
        corpus, db = Path(tmp) / "corpus", Path(tmp) / "idx.db"
        versions = make_corpus(corpus, args.files)
        started = time.perf_counter()
        with serve(Faults(dims=64, latency=args.latency)) as server:
            result = soak(corpus, db, server, versions, kills=args.kills, seed=args.seed)
        seconds = time.perf_counter() - started
    print(f"runs killed:          {result.kills:,} ({result.finished_early} finished first)")
    print(f"files edited between: {result.edits:,}")
    print(f"checks passed:        {result.checks_passed:,} of {args.kills + 1}")
    print(f"files, chunks:        {result.files:,}, {result.chunks:,}")
    print(f"inputs embedded:      {result.inputs_sent:,} by the server")
    print(f"distinct cached:      {result.distinct_cached:,}")
    print(f"re-sent:              {result.excess:,} (bound {result.in_flight_bound:,})")
    print(f"seconds:              {seconds:.0f}")
    for problem in result.problems:
        print(f"PROBLEM: {problem}")
    if result.problems:
        raise SystemExit(1)


def _soak_workers(args: argparse.Namespace) -> None:
    from pg import postgres

    from ragidx.testing.pg_soak import soak_workers

    with tempfile.TemporaryDirectory(prefix="ragidx-soak-") as tmp, postgres() as url:
        corpus = Path(tmp) / "corpus"
        versions = make_corpus(corpus, args.files)
        started = time.perf_counter()
        with serve(Faults(dims=64, latency=args.latency)) as server:
            # Its defaults: moments of 0.5-3 s, a quarter of the tree edited every round.
            result = soak_workers(
                corpus, url, server, versions, kills=args.kills, workers=args.workers,
                seed=args.seed,
            )  # fmt: skip
        seconds = time.perf_counter() - started
    print(f"workers:              {args.workers} parts (--shard K/{args.workers}), one Postgres")
    print(f"rounds, kills:        {result.rounds:,}, {result.kills:,}", end="")
    print(f" ({result.finished_early} parts finished first)")
    print(f"files edited between: {result.edits:,}")
    print(f"indexed after rounds: {result.indexed_after}")
    print(f"checks passed:        {result.checks_passed:,} of {result.rounds + 1}")
    print(f"files, chunks:        {result.files:,}, {result.chunks:,}")
    print(f"inputs embedded:      {result.inputs_sent:,} by the server")
    print(f"distinct cached:      {result.distinct_cached:,}")
    print(f"seconds:              {seconds:.0f}")
    for problem in result.problems:
        print(f"PROBLEM: {problem}")
    if result.problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
