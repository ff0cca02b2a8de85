"""What importing each of ragidx's dependencies costs, each in a fresh interpreter.

    uv run python bench/imports.py [--repeat 7] [MODULE ...]

For each module (by default the packages ragidx depends on, and what it imports of them),
starts `python -c` --repeat times, taking turns, and prints the median seconds of the import
alone, timed inside the child (the interpreter's own start-up is not counted), after one
untimed round that compiles the bytecode: the children write it under
~/.cache/ragidx-bench/pycache (PYTHONPYCACHEPREFIX), whatever PYTHONDONTWRITEBYTECODE says,
or every import would include compiling. A module already imported by another is cheaper
after it: each figure is the module alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

MODULES = (
    "typer",
    "rich.progress",
    "httpx",
    "tenacity",
    "pathspec",
    "charset_normalizer",
    "numpy",
    "bpe_openai",
    "tokenizers",
    "ragidx.cli",
)
PYCACHE = Path.home() / ".cache" / "ragidx-bench" / "pycache"
CODE = "import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)"
# bpe_openai's first encoding is built on first use, not at import: time that too.
FIRST_USE = {
    "bpe_openai": (
        "import time; t = time.perf_counter(); import bpe_openai;"
        " bpe_openai.get_encoding('cl100k_base').encode_ordinary('warm');"
        " print(time.perf_counter() - t)"
    )
}


def seconds(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("modules", nargs="*", default=list(MODULES))
    args = parser.parse_args()
    codes = {m: CODE.format(m) for m in args.modules}
    codes |= {f"{m} + first encoding": c for m, c in FIRST_USE.items() if m in args.modules}
    times: dict[str, list[float]] = {name: [] for name in codes}
    for code in codes.values():  # compiles the bytecode
        seconds(code)
    for _ in range(args.repeat):
        for name, code in codes.items():
            times[name].append(seconds(code))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"median of {args.repeat} fresh interpreters each; load average {load}")
    for name, runs in times.items():
        spread = f"{min(runs) * 1000:.0f}-{max(runs) * 1000:.0f}"
        print(f"{name:<32} {statistics.median(runs) * 1000:6.0f} ms  ({spread} ms)")


if __name__ == "__main__":
    main()
