"""How fast `chunk_text` cuts a corpus on one core, and how full its chunks are.

    uv run python bench/chunking.py [--corpus DIR] [--chunk-tokens 512] [--overlap 64]
        [--repeat 3] [--files N]

Reads every Markdown file under --corpus (default: bench/compare.py's corpus,
~/.cache/ragidx-bench/corpora/md-5000; run compare.py once to make it) into memory, then
chunks them all in this one process, for each token counter (the estimate, cl100k_base) and
each layout (sections packed, one section per chunk). For each it prints the median of
--repeat runs of MB/s (corpus characters over wall seconds of `chunk_text` alone), the
chunks, the mean real cl100k tokens of a chunk's input and that as a share of the budget,
all inputs' cl100k tokens over the corpus's own, and the largest input's cl100k tokens.
Targets (issue 16): the estimate at 30 MB/s or more, cl100k at 15 MB/s or more, packed
chunks at 60% of the budget or more, inputs at most 1.15x the corpus.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from ragidx.chunk.chunker import chunk_text
from ragidx.chunk.tokens import counter
from ragidx.config import ChunkConfig
from ragidx.models import Chunk

CORPUS = Path.home() / ".cache" / "ragidx-bench" / "corpora" / "md-5000"
MB = 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", type=int, default=0, help="only the first N files (0: all)")
    args = parser.parse_args()
    paths = sorted(args.corpus.rglob("*.md"))
    if args.files:
        paths = paths[: args.files]
    if not paths:
        raise SystemExit(f"no Markdown files under {args.corpus}: run bench/compare.py once")
    texts = [p.read_text(encoding="utf-8") for p in paths]
    chars = sum(map(len, texts))
    real = counter("cl100k_base")
    corpus_tokens = sum(map(real.count, texts))
    print(
        f"{len(texts)} files, {chars / MB:.1f} M characters, {corpus_tokens:,} cl100k tokens;"
        f" budget {args.chunk_tokens}, overlap {args.overlap}; median of {args.repeat};"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'counter':<12} {'layout':<12} {'MB/s':>6} {'chunks':>8} {'mean tok':>9}"
        f" {'% budget':>9} {'x corpus':>9} {'max tok':>8}"
    )
    for tokenizer in (None, "cl100k_base"):
        for pack in (True, False):
            config = ChunkConfig(
                chunk_tokens=args.chunk_tokens,
                chunk_overlap=args.overlap,
                pack=pack,
                tokenizer=tokenizer,
            )
            chunk_text("warm up: the counter is built once per process", "markdown", config)
            seconds: list[float] = []
            chunks: list[Chunk] = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                chunks = [c for text in texts for c in chunk_text(text, "markdown", config)]
                seconds.append(time.perf_counter() - start)
            sizes = [real.count(c.input) for c in chunks]
            mean = statistics.mean(sizes)
            print(
                f"{tokenizer or 'estimate':<12} {'packed' if pack else 'one-section':<12}"
                f" {chars / MB / statistics.median(seconds):>6.1f} {len(chunks):>8,}"
                f" {mean:>9.0f} {mean / args.chunk_tokens:>9.0%}"
                f" {sum(sizes) / corpus_tokens:>9.3f} {max(sizes):>8}"
            )


if __name__ == "__main__":
    main()
