"""Index a generated tree of small files; print seconds and peak memory of each run.

    uv run python bench/tree.py [--files 10000] [--words 120] [--repeat 3] [--noop-repeat 9]
                                [--others]

Runs, side by side in one go: a first index (`--json`, for its summary) `--repeat` times,
then a no-op re-run over the unchanged tree (`--quiet`) and `find -type f -printf` over the
same tree, alternately, `--noop-repeat` times. Quotes medians.

With `--others`, every directory also holds a symbolic link and a FIFO, which the walk
reports as skipped and never stores: the no-op run must still plan such a directory from its
stamp.

Both are measured warm: one untimed round first, and the bytecode of ragidx and what it
imports compiled beforehand (this machine sets PYTHONDONTWRITEBYTECODE, so a process would
otherwise compile every module it imports, at every start, which no installed copy does).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import launch

WORDS = (
    "queue worker job retry backoff lease timeout schedule cron broker redis sqlite deploy"
    " metric alert token secret config option value error code trace span batch chunk vector"
).split()


def make_tree(root: Path, files: int, words: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        folder = root / f"team{i % 25:02d}" / f"area{i % 9}"
        folder.mkdir(parents=True, exist_ok=True)
        paragraphs = [
            " ".join(rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(words // 3))
            for _ in range(3)
        ]
        text = f"# Note {i}\n\n" + "\n\n".join(paragraphs) + "\n"
        (folder / f"note{i:06d}.md").write_text(text, encoding="utf-8")
        total += len(text)
    return total


def add_others(root: Path) -> int:
    """A symbolic link and a FIFO in every directory of the tree; how many entries."""
    folders = [p for p in root.rglob("*") if p.is_dir()]
    for folder in folders:
        (folder / "zz-link.md").symlink_to("nowhere.md")
        os.mkfifo(folder / "zz-fifo")
    return 2 * len(folders)


def compile_bytecode() -> None:
    """Compile ragidx and the packages it imports, as an installer does, so that no timed
    run pays for it."""
    import ragidx

    dirs = [str(Path(ragidx.__file__).parent), sysconfig.get_paths()["purelib"]]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *dirs], check=True)


def timed(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MB, and stdout of one child process (started by
    bench/launch.py, so that its peak RSS is not this process's)."""
    report = cwd / "launch.txt"
    proc = subprocess.Popen(
        launch.command(report, cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} exited {proc.returncode}")
    seconds, _, rss = launch.result(report)
    return seconds, rss // 1024, out.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--noop-repeat", type=int, default=9)
    parser.add_argument("--others", action="store_true", help="a link and a FIFO per directory")
    args = parser.parse_args()
    compile_bytecode()

    work = Path(tempfile.mkdtemp(prefix="ragidx-bench-"))
    try:
        size = make_tree(work / "tree", args.files, args.words)
        print(f"tree: {args.files:,} files, {size / 1e6:.1f} MB of text")
        if args.others:
            print(f"      and {add_others(work / 'tree'):,} links and FIFOs")
        ragidx = [sys.executable, "-m", "ragidx", "index", "tree", "--json", "--no-progress"]
        first, noop, find = [], [], []
        summary: dict[str, object] = {}
        for n in range(args.repeat):
            seconds, rss, out = timed([*ragidx, "--db", f"run{n}.db"], work)
            summary = json.loads(out.splitlines()[-1])
            first.append((seconds, rss))
        # The no-op run as a user runs it, without 100,000 JSON lines to write.
        quiet = [*ragidx[:5], "--quiet", "--no-progress", "--db", "run0.db"]
        listing = ["find", "tree", "-type", "f", "-printf", "%s %T@\n"]
        timed(quiet, work), timed(listing, work)  # warm-up, untimed
        for _ in range(args.noop_repeat):
            seconds, rss, _ = timed(quiet, work)
            noop.append((seconds, rss))
            find.append(timed(listing, work)[0])
        med = statistics.median
        t_first, t_noop, t_find = med(s for s, _ in first), med(s for s, _ in noop), med(find)
        chunks = int(str(summary["chunks"]))
        print(f"first run : {t_first:6.2f} s, peak RSS {max(r for _, r in first)} MB")
        print(f"            {chunks:,} chunks, {chunks / t_first:,.0f} chunks/s")
        print(f"no-op run : {t_noop:6.2f} s, peak RSS {max(r for _, r in noop)} MB")
        print(f"find      : {t_find:6.2f} s; no-op / find = {t_noop / t_find:.1f}x")
        print(f"(medians of {args.repeat} first runs and {args.noop_repeat} no-op and find runs;")
        print(" process start-up included)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
