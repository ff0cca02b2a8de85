"""Index generated corpora of growing size; show that peak memory does not grow with them.

    uv run python bench/memory.py [--sizes 100M,1G] [--corpus-dir DIR] [--keep]

Each size (K, M, G suffixes, powers of 1024, like --max-file-size) gets a corpus of many small
Markdown files (1-20 KB, nested folders of 50) plus a few large files: one Markdown file of 60%
of the size below 1G; from 1G up, two Markdown files of 150 MB and a 100 MB `.txt` log, scaled
with the size. Corpora are deterministic and cached under --corpus-dir (default
$TMPDIR/ragidx-memory-corpora/<size>); a rerun re-uses them. Delete that folder to free the
space. Each corpus is indexed twice with the offline hash embedder: a first run into a fresh
index, then a no-op re-run. Prints seconds, chunks/s and the peak RSS of each run (ru_maxrss
of the ragidx process alone, start-up included). --keep keeps the index databases.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import launch
from cache import MARKER, cached_corpus  # bench/cache.py: scripts run from bench/

GENERATOR_VERSION = 1
ROOT = Path(__file__).resolve().parent.parent
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
MB = 1 << 20
GB = 1 << 30
TARGET_MB = 300
FILES_PER_FOLDER = 50

TECH = (
    "queue worker job retry backoff lease timeout schedule cron broker redis sqlite deploy"
    " metric alert token secret config option value error code trace span batch chunk vector"
    " index embedding server client request response cache shard replica snapshot"
).split()
SYLLABLES = "ka lo mi nu pe ra si to ve wa ben dor fal gim hul jor kel man nor pil qua rest".split()
LEVELS = ["INFO"] * 12 + ["DEBUG"] * 6 + ["WARN"] * 2 + ["ERROR"]
COMPONENTS = ["api", "worker", "scheduler", "store", "embedder", "gateway", "auth", "cron"]


# --- corpus text ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """Pre-built words, sentences and code blocks to sample text from quickly."""

    words: list[str]
    sentences: list[str]
    code: list[str]


def make_pool(seed: int = 7) -> Pool:
    rng = random.Random(seed)
    made = {"".join(rng.choices(SYLLABLES, k=rng.randint(1, 3))) for _ in range(3000)}
    words = sorted(made) + TECH * 20
    sentences = [sentence(rng, words) for _ in range(4000)]
    code = [code_block(rng, words) for _ in range(300)]
    return Pool(words, sentences, code)


def sentence(rng: random.Random, words: list[str]) -> str:
    picked = rng.choices(words, k=rng.randint(6, 18))
    if rng.random() < 0.3:
        picked[rng.randrange(len(picked))] += str(rng.randrange(1000))
    text = " ".join(picked)
    return text[0].upper() + text[1:] + rng.choice(".....?!")


def code_block(rng: random.Random, words: list[str]) -> str:
    name = "_".join(rng.choices(words, k=2))
    lines = [f"def {name}({rng.choice(words)}, {rng.choice(words)}):"]
    for _ in range(rng.randint(2, 12)):
        a, b, c = rng.choices(words, k=3)
        lines.append(f"    {a} = {b}.{c}({rng.randrange(100)})")
    lines.append(f"    return {rng.choice(words)}")
    return "```python\n" + "\n".join(lines) + "\n```"


def paragraph(rng: random.Random, pool: Pool) -> str:
    return " ".join(rng.choices(pool.sentences, k=rng.randint(2, 8)))


def bullets(rng: random.Random, pool: Pool) -> str:
    return "\n".join("- " + s for s in rng.choices(pool.sentences, k=rng.randint(3, 7)))


def title(rng: random.Random, pool: Pool) -> str:
    return " ".join(rng.choices(pool.words, k=rng.randint(2, 5))).capitalize()


def section(rng: random.Random, pool: Pool, size: int, level: str = "##") -> str:
    """A heading and blocks (paragraphs, now and then a list or code) of about `size` chars."""
    blocks = [f"{level} {title(rng, pool)}"]
    length = 0
    while length < size:
        roll = rng.random()
        if roll < 0.08:
            block = rng.choice(pool.code)
        elif roll < 0.16:
            block = bullets(rng, pool)
        else:
            block = paragraph(rng, pool)
        blocks.append(block)
        length += len(block) + 2
    return "\n\n".join(blocks) + "\n\n"


def small_markdown(rng: random.Random, pool: Pool, n: int) -> str:
    target = rng.randint(1 << 10, 20 << 10)
    parts = [f"# Note {n}: {title(rng, pool)}\n\n", paragraph(rng, pool) + "\n\n"]
    length = sum(map(len, parts))
    while length < target:
        part = section(rng, pool, min(rng.randint(500, 4000), target - length))
        parts.append(part)
        length += len(part)
    return "".join(parts)


# --- corpus files -----------------------------------------------------------------------


def write_small_files(root: Path, rng: random.Random, pool: Pool, budget: int) -> int:
    """Small Markdown files in nested folders until `budget` bytes; returns how many."""
    written = count = 0
    while written < budget:
        folder_no = count // FILES_PER_FOLDER
        folder = root / "notes" / f"area{folder_no // 20:03d}" / f"topic{folder_no % 20:02d}"
        if count % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        text = small_markdown(rng, pool, count)
        (folder / f"note{count:06d}.md").write_text(text, encoding="ascii")
        written += len(text)
        count += 1
    return count


def write_big_markdown(out: TextIO, rng: random.Random, pool: Pool, size: int) -> None:
    written = 0
    part = 0
    while written < size:
        if part % 100 == 0:
            heading = f"# Part {part // 100 + 1}: {title(rng, pool)}\n\n"
            out.write(heading)
            written += len(heading)
        text = section(rng, pool, rng.randint(2 << 10, 6 << 10))
        out.write(text)
        written += len(text)
        part += 1


def log_lines(rng: random.Random, pool: Pool, count: int, start_ms: int) -> tuple[str, int]:
    """`count` log lines with rising timestamps; returns the text and the last timestamp."""
    steps = rng.choices(range(1, 400), k=count)
    levels = rng.choices(LEVELS, k=count)
    components = rng.choices(COMPONENTS, k=count)
    messages = rng.choices(pool.sentences, k=count)
    lines = []
    ms = start_ms
    second, stamp = -1, ""
    for step, level, component, message in zip(steps, levels, components, messages, strict=True):
        ms += step
        if ms // 1000 != second:
            second = ms // 1000
            stamp = timestamp(second)
        lines.append(
            f"{stamp}.{ms % 1000:03d}Z {level:<5} {component}[{1000 + ms % 97}]: {message}\n"
        )
    return "".join(lines), ms


def timestamp(second: int) -> str:
    """`2024-03-DDTHH:MM:SS` of a second counted from the start of the log (28-day months)."""
    minutes, sec = divmod(second, 60)
    hours, mins = divmod(minutes, 60)
    day, hours = divmod(hours, 24)
    return f"2024-03-{day % 28 + 1:02d}T{hours:02d}:{mins:02d}:{sec:02d}"


def write_big_log(out: TextIO, rng: random.Random, pool: Pool, size: int) -> None:
    written = ms = 0
    while written < size:
        text, ms = log_lines(rng, pool, 2000, ms)
        out.write(text)
        written += len(text)


def big_files(size: int) -> list[tuple[str, int]]:
    """Names and sizes of the large files of a corpus of `size` bytes."""
    if size < GB:
        return [("big/handbook.md", size * 6 // 10)]
    scale = size / GB
    return [
        ("big/handbook.md", int(150 * MB * scale)),
        ("big/reference.md", int(150 * MB * scale)),
        ("big/server-log.txt", int(100 * MB * scale)),
    ]


def generate(root: Path, size: int, pool: Pool) -> None:
    rng = random.Random(size)
    bigs = big_files(size)
    for name, big in bigs:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="ascii", buffering=1 << 20) as out:
            writer = write_big_log if name.endswith(".txt") else write_big_markdown
            writer(out, rng, pool, big)
    write_small_files(root, rng, pool, size - sum(b for _, b in bigs))


def tree_stats(root: Path) -> tuple[int, int]:
    """Files and bytes under `root`, the marker left out."""
    files = total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if name != MARKER:
                files += 1
                total += os.stat(os.path.join(folder, name)).st_size
    return files, total


def corpus(base: Path, label: str, size: int, pool: Pool) -> tuple[Path, dict[str, Any]]:
    """The cached corpus of `size` bytes, generated first if missing or stale."""

    def make(folder: Path) -> dict[str, Any]:
        generate(folder, size, pool)
        files, total = tree_stats(folder)
        return {"files": files, "bytes": total}

    wanted = {"generator": GENERATOR_VERSION, "size": size}
    root, info, seconds = cached_corpus(base / label, wanted, make)
    if seconds is None:
        print(f"corpus {label}: cached at {root}")
    else:
        rate = info["bytes"] / MB / seconds
        print(f"corpus {label}: generated at {root} in {seconds:.1f} s ({rate:.0f} MB/s)")
    return root, info


# --- runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: int
    summary: dict[str, Any]


def summary_lines(stream: Iterator[bytes]) -> dict[str, Any]:
    """The last summary line of ragidx's JSON output, read line by line."""
    summary: dict[str, Any] = {}
    for line in stream:
        if b'"summary"' in line and (event := json.loads(line)).get("event") == "summary":
            summary = event
    return summary


def max_rss_mb(maxrss: int) -> int:
    return maxrss // MB if sys.platform == "darwin" else maxrss // 1024


def timed(cmd: list[str], cwd: Path, errors: Path) -> Run:
    """Wall seconds, peak RSS in MB, and the summary line of one ragidx run."""
    report = errors.with_suffix(".launch")
    with errors.open("wb") as err:
        # Through bench/launch.py: a child forked from this process would start at its RSS.
        proc = subprocess.Popen(
            launch.command(report, cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=err
        )
        assert proc.stdout is not None
        summary = summary_lines(proc.stdout)
        proc.wait()
    seconds, _, maxrss = launch.result(report)
    finished = proc.returncode == 0 or (proc.returncode == 1 and summary.get("failed"))
    if not finished:  # exit code 1 is also an uncaught error: trust it only with failed files
        tail = errors.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}\n{tail}")
    return Run(seconds, max_rss_mb(maxrss), summary)


def index_cmd(target: Path, db: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "ragidx", "index", str(target), "--db", str(db)),
        *("--no-progress", "--json", "-q", "--provider", "hash", "--max-file-size", "2G"),
    ]


def db_bytes(db: Path) -> int:
    siblings = (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
    return sum(p.stat().st_size for p in siblings if p.exists())


# --- report -----------------------------------------------------------------------------

HEADER = (
    f"{'corpus':>8} {'MB':>8} {'files':>8} {'chunks':>9} │ {'first s':>8} {'chunks/s':>9}"
    f" {'RSS MB':>7} │ {'re-run s':>8} {'RSS MB':>7}"
)


def row(label: str, info: dict[str, Any], first: Run, rerun: Run) -> str:
    chunks = int(first.summary["chunks"])
    return (
        f"{label:>8} {info['bytes'] / MB:8.1f} {int(first.summary['files']):8,} {chunks:9,} │"
        f" {first.seconds:8.1f} {chunks / first.seconds:9,.0f} {first.rss_mb:7} │"
        f" {rerun.seconds:8.1f} {rerun.rss_mb:7}"
    )


def notes(label: str, first: Run, rerun: Run, db: Path) -> list[str]:
    s = first.summary
    lines = [
        f"{label}: indexed {s['indexed']:,}, skipped {s['skipped']:,}, failed {s['failed']:,};"
        f" {int(s['tokens']):,} tokens; re-run unchanged {rerun.summary['unchanged']:,},"
        f" indexed {rerun.summary['indexed']:,}; SQLite db {db_bytes(db) / MB:.1f} MB"
    ]
    peak = max(first.rss_mb, rerun.rss_mb)
    verdict = "PASS" if peak < TARGET_MB else "FAIL"
    lines.append(f"{label}: target: peak RSS < {TARGET_MB} MB: {verdict} (peak {peak} MB)")
    return lines


# --- main -------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[str, int]:
    """`10M`, `512K`, `1G` -> a label and a number of bytes (powers of 1024)."""
    m = re.fullmatch(r"(\d+)\s*([KMG]?)B?", text.strip().upper())
    if not m or int(m.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 10M or 1G")
    return m.group(1) + m.group(2), int(m.group(1)) * UNITS[m.group(2)]


def parse_sizes(text: str) -> list[tuple[str, int]]:
    return [parse_size(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("100M,1G"))
    default_dir = Path(tempfile.gettempdir()) / "ragidx-memory-corpora"
    parser.add_argument("--corpus-dir", type=Path, default=default_dir)
    parser.add_argument("--keep", action="store_true", help="keep the index databases")
    args = parser.parse_args()

    args.corpus_dir.mkdir(parents=True, exist_ok=True)
    pool = make_pool()
    work = Path(tempfile.mkdtemp(prefix="ragidx-memory-"))
    rows, lines = [HEADER], []
    try:
        (work / "empty").mkdir()
        base = timed(index_cmd(work / "empty", work / "empty.db"), ROOT, work / "stderr.txt")
        for label, size in args.sizes:
            root, info = corpus(args.corpus_dir, label, size, pool)
            db = work / label / "index.db"
            db.parent.mkdir()
            cmd = index_cmd(root, db)
            first = timed(cmd, ROOT, work / label / "stderr-first.txt")
            rerun = timed(cmd, ROOT, work / label / "stderr-rerun.txt")
            rows.append(row(label, info, first, rerun))
            lines += notes(label, first, rerun, db)
            print(f"corpus {label}: indexed in {first.seconds:.1f} s, re-run {rerun.seconds:.1f} s")
        print()
        print("\n".join(rows))
        print("\n".join(lines))
        print(f"baseline: indexing an empty folder peaks at {base.rss_mb} MB RSS")
        print("(peak RSS is ru_maxrss of the ragidx process; seconds include start-up)")
    finally:
        if args.keep:
            print(f"index databases kept in {work}")
        else:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
