"""`ragidx export` with and without `--vectors`: seconds and the ratio between them.

    uv run python bench/export.py [--files 4000] [--keep DIR]

Generates a seeded corpus of Markdown files (about 10 chunks each at `--chunk-tokens 128`),
indexes it once with the offline hash embedder (1,024 dims), then times each export as a
child process writing to /dev/null (best of `--repeat`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "alpha beta gamma delta queue worker retry backoff jitter token budget index vector chunk"
    " embed server latency window limit cache store commit batch file path walk read decode"
).split()


def generate(root: Path, files: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    for n in range(files):
        path = root / f"d{n % 50:02d}" / f"f{n:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        sections = []
        for s in range(10):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 90)))
            sections.append(f"## Section {s}\n\n{words}.\n")
        path.write_text(f"# File {n}\n\n" + "\n".join(sections), encoding="utf-8")


def ragidx(*args: str, cwd: Path, out: int | None = None) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one child: CPU time is what a busy machine
    disturbs least."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "ragidx", *args],
        cwd=cwd,
        stdout=out if out is not None else subprocess.DEVNULL,
        env={**os.environ, "RAGIDX_PROVIDER": "hash"},
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"ragidx {' '.join(args)} exited {child.returncode}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="use (or make) the corpus and index here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        db = base / "idx.db"
        if not db.exists():
            generate(base / "docs", args.files)
            seconds, _ = ragidx(
                "index", "docs", "--db", "idx.db", "--chunk-tokens", "128", "--quiet", cwd=base
            )
            print(f"indexed {args.files:,} files in {seconds:.1f} s")
        stats = json.loads(
            subprocess.run(
                [sys.executable, "-m", "ragidx", "stats", "--db", "idx.db", "--json"],
                cwd=base, check=True, capture_output=True, text=True,
            ).stdout
        )  # fmt: skip
        print(f"{stats['chunks']:,} chunks, {stats['dims']} dims")
        with open(os.devnull, "w") as null:
            runs: dict[str, list[tuple[float, float]]] = {"plain": [], "vectors": []}
            for _ in range(args.repeat):  # taking turns, so that both meet the same load
                runs["plain"].append(
                    ragidx("export", "--db", "idx.db", cwd=base, out=null.fileno())
                )
                runs["vectors"].append(
                    ragidx("export", "--db", "idx.db", "--vectors", cwd=base, out=null.fileno())
                )
        (pw, pc), (vw, vc) = (tuple(map(min, zip(*runs[k], strict=True))) for k in runs)
        print("                  wall s   CPU s   (best of each)")
        print(f"export            {pw:6.2f}  {pc:6.2f}")
        print(
            f"export --vectors  {vw:6.2f}  {vc:6.2f}"
            f"   ratio {vw / pw:.1f}x wall, {vc / pc:.1f}x CPU"
        )


if __name__ == "__main__":
    main()
