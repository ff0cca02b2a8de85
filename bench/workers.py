"""Many workers, one index: 1, 2 and 4 `ragidx index --shard K/N` processes into one Postgres
(and the Ray runner beside them, with --ray), on bench/compare.py's corpus, against ragidx's
test embedding server with a fixed latency a request.

    uv run python bench/workers.py [--files 2000] [--latency 0.02] [--repeat 3]
        [--configs sqlite,pg1,pg2,pg4,ray] [--ragidx-args "--workers 1"]

Each configuration indexes the whole corpus into a fresh database (SQLite: a fresh file) on
one PostgreSQL started for the bench (bench/pg.py, default durability); the N processes of a
configuration start together, and its wall time runs from the first start to the last exit.
The figure is wall time for the same corpus and the same chunks (every configuration embeds
the same inputs: checked), and the ratio is one Postgres worker's wall time over the
configuration's. "busy" is how many of the machine's cores were busy on average during the
configuration's run (from /proc/stat: ragidx, PostgreSQL, the test server and anything else):
near the core count, a configuration is bound by the CPU, and more workers cannot help.
"CPU s" splits the processor time the run cost: the ragidx processes (this script's waited
children; Ray's own processes are not among them), PostgreSQL (the postmaster, its live
backends and those it reaped, from /proc) and the test server (a thread of this script).
With --repeat N the configurations take turns N times; medians.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from compare import corpus  # bench/compare.py: the same corpus, cached
from pg import postgres

from ragidx.testing.server import Faults, serve

DIMS = 1536
CONFIGS = ("sqlite", "pg1", "pg2", "pg4", "ray")


def _database(url: str) -> str:
    """A fresh database on the bench's server, its URL."""
    import psycopg

    name = f"w_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(url.replace("/bench?", f"/{name}?", 1), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return url.replace("/bench?", f"/{name}?", 1)


def _commands(
    config: str, root: Path, db: str, server_url: str, extra: list[str]
) -> list[list[str]]:
    base = [
        sys.executable, "-m", "ragidx", "index", str(root), "--db", db,
        "--provider", "openai", "--base-url", f"{server_url}/v1", "--model", "bench",
        "--dimensions", str(DIMS), "--quiet", "--no-progress", "--json", *extra,
    ]  # fmt: skip
    if config in ("sqlite", "pg1"):
        return [base]
    if config == "ray":
        return [[*base, "--ray", "local"]]
    n = int(config[2:])
    return [[*base, "--shard", f"{k}/{n}"] for k in range(1, n + 1)]


def _busy_jiffies() -> tuple[int, int]:
    """The machine's busy and total CPU time so far, in clock ticks (/proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _ticks(stat: str) -> tuple[int, int]:
    """(own, reaped children's) CPU clock ticks of a /proc/PID/stat line."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _postgres_seconds(pg_url: str) -> float:
    """CPU seconds PostgreSQL has spent so far: the postmaster (with the backends it has
    reaped) and its live children. 0 where it cannot be read."""
    data = parse_qs(urlsplit(pg_url).query).get("host", [""])[0]
    try:
        postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
        own, reaped = _ticks(Path(f"/proc/{postmaster}/stat").read_text())
        ticks = own + reaped
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                text = stat.read_text()
                if int(text.rsplit(")", 1)[1].split()[1]) == postmaster:
                    ticks += _ticks(text)[0]
    except (OSError, IndexError, ValueError):
        return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu(pg_url: str) -> tuple[float, float, float]:
    """CPU seconds so far of (this script's waited children, PostgreSQL, this script)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return kids.ru_utime + kids.ru_stime, _postgres_seconds(pg_url), me.ru_utime + me.ru_stime


def _run(
    config: str, root: Path, pg_url: str, latency: float, extra: list[str]
) -> tuple[float, int, float, tuple[float, ...]]:
    """Wall seconds of one configuration, the inputs the server embedded, the cores busy on
    average meanwhile, and the CPU seconds of ragidx, PostgreSQL and the test server."""
    with tempfile.TemporaryDirectory(prefix="ragidx-workers-") as tmp:
        db = str(Path(tmp) / "idx.db") if config == "sqlite" else _database(pg_url)
        with serve(Faults(dims=DIMS, latency=latency)) as server:
            commands = _commands(config, root, db, server.url, extra)
            env = {k: v for k, v in os.environ.items() if not k.startswith("RAGIDX_")}
            # Ray: no token file in the user's home; no copy of the work tree for each worker.
            env.update(RAY_AUTH_MODE="disabled", RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
            busy_before, _ = _busy_jiffies()
            cpu_before = _cpu(pg_url)
            started = time.perf_counter()
            procs = [
                subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
                for c in commands
            ]
            errors = [p.communicate()[1] for p in procs]
            wall = time.perf_counter() - started
            busy = (_busy_jiffies()[0] - busy_before) / os.sysconf("SC_CLK_TCK") / wall
            cpu = tuple(a - b for a, b in zip(_cpu(pg_url), cpu_before, strict=True))
            for proc, err in zip(procs, errors, strict=True):
                if proc.returncode != 0:
                    raise SystemExit(f"{config} exited {proc.returncode}: {err[-600:]!r}")
            return wall, server.counters.inputs, busy, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--configs", default="sqlite,pg1,pg2,pg4")
    parser.add_argument("--ragidx-args", default="")
    parser.add_argument(
        "--corpus-dir", type=Path, default=Path.home() / ".cache" / "ragidx-bench" / "corpora"
    )
    args = parser.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    if unknown := set(configs) - set(CONFIGS):
        raise SystemExit(f"unknown configs: {sorted(unknown)}")
    root, info = corpus(args.corpus_dir, args.files)
    extra = shlex.split(args.ragidx_args)
    print(
        f"{platform.python_version()} on {os.cpu_count()} cores; {args.files:,} files,"
        f" {info['bytes'] / 1e6:.1f} MB; server latency {args.latency * 1000:.0f} ms;"
        f" load {os.getloadavg()[0]:.2f}"
    )
    walls: dict[str, list[float]] = {c: [] for c in configs}
    busies: dict[str, list[float]] = {c: [] for c in configs}
    inputs: dict[str, set[int]] = {c: set() for c in configs}
    cpus: dict[str, list[tuple[float, ...]]] = {c: [] for c in configs}
    with postgres() as pg_url:
        for turn in range(args.repeat):
            for config in configs:
                wall, sent, busy, cpu = _run(config, root, pg_url, args.latency, extra)
                walls[config].append(wall)
                cpus[config].append(cpu)
                busies[config].append(busy)
                inputs[config].add(sent)
                print(
                    f"  turn {turn + 1} {config:7} {wall:7.2f} s  busy {busy:.2f} cores"
                    f"  {sent:,} inputs  CPU s {'/'.join(f'{c:.1f}' for c in cpu)}",
                    flush=True,
                )
    base = statistics.median(walls["pg1"]) if "pg1" in walls else None
    print(f"\nload {os.getloadavg()[0]:.2f}; medians of {args.repeat}")
    print(
        f"{'config':8} {'wall s':>8} {'files/s':>8} {'vs pg1':>7} {'busy':>6}"
        f"  {'CPU s ragidx/pg/server':>22}  inputs"
    )
    for config in configs:
        wall = statistics.median(walls[config])
        ratio = f"{base / wall:6.2f}x" if base else "-"
        shown = ",".join(f"{n:,}" for n in sorted(inputs[config]))
        busy = statistics.median(busies[config])
        cpu = "/".join(f"{statistics.median(c[i] for c in cpus[config]):.1f}" for i in range(3))
        print(
            f"{config:8} {wall:8.2f} {args.files / wall:8.1f} {ratio:>7} {busy:6.2f}"
            f"  {cpu:>22}  {shown}"
        )


if __name__ == "__main__":
    main()
