"""When does the progress bar know the run's total? Index a tree of small files and print it.

    uv run python bench/progress.py [--files 30000] [--dir DIR]

Makes --files small Markdown files (about 1 KB each, folders of 250) under --dir (default a
temporary folder, removed after), indexes them into a fresh index with the offline hash
embedder, then again after adding a tenth as many new files (a re-run: most unchanged). For
each run it prints the seconds until `WalkFinished` (the bar's total), the files done by then,
the whole run's seconds, and this process's peak RSS.

On the 2-core box (30,000 files, shared with other jobs): total known at 0.48 s of 15.03 s,
35 files done by then, peak RSS 89 MB; re-run of 33,000 (3,000 new) at 0.21 s of 1.78 s.
Before the walk could run ahead of the readers (it was held to a read queue of 16 files), the
last of 33,000 files was found at 15.79 s of 16.18 s, with 31,928 already done.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

from ragidx import HashEmbedder, IndexConfig, index
from ragidx.events import Event, FileDone, FilesUnchanged, WalkFinished

WORDS = "list files directory archive compress extract show remove copy move print disk".split()


def make(root: Path, files: int, prefix: str, seed: int) -> None:
    rng = random.Random(seed)
    for n in range(files):
        folder = root / f"{prefix}{n // 250:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"# {prefix} page {n}", ""]
        for _ in range(rng.randrange(4, 10)):
            lines += ["- " + " ".join(rng.choice(WORDS) for _ in range(12)) + ":", "", "`cmd`", ""]
        (folder / f"p{n}.md").write_text("\n".join(lines), encoding="utf-8")


def run(root: Path, db: Path) -> str:
    started = time.monotonic()
    done = [0]
    walk: list[tuple[float, int, int]] = []

    def on_event(event: Event) -> None:
        if isinstance(event, FileDone):
            done[0] += 1
        elif isinstance(event, FilesUnchanged):
            done[0] += len(event.paths)
        elif isinstance(event, WalkFinished):
            walk.append((time.monotonic() - started, done[0], event.files))

    summary = index([root], HashEmbedder(), IndexConfig(db_path=db), on_event)
    seconds = time.monotonic() - started
    at, done_then, files = walk[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (
        f"{summary.files:,} files ({summary.counts['indexed']:,} indexed): total {files:,} "
        f"known at {at:.2f} s of {seconds:.2f} s, {done_then:,} files done by then; "
        f"peak RSS {rss:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=30_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="ragidx-progress-"))
    try:
        tree, db = base / "tree", base / "idx.db"
        make(tree, args.files, "a", 1)
        print("first run:", run(tree, db))
        make(tree, args.files // 10, "b", 2)
        print("re-run:   ", run(tree, db))
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
