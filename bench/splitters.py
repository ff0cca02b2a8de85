"""ragidx's chunker against semantic-text-splitter's MarkdownSplitter, on one core.

    uv run --with semantic-text-splitter python bench/splitters.py [--corpus DIR]
        [--chunk-tokens 512] [--chunk-overlap 64] [--chars 2000] [--repeat 3]
        [--only ragidx,chars,tiktoken,callback] [--ragidx-kw NAME=VALUE ...]

semantic-text-splitter is not a dependency of ragidx: `uv run --with` brings it for this run
only. The corpus is bench/compare.py's (5,000 Markdown files, 29.8 MB, cached under
~/.cache/ragidx-bench/corpora/md-5000; run compare.py once to make it). Every file is read
into memory first; the clock runs only while chunking, one file at a time, the process pinned
to one core. For each chunker it prints the seconds (median of --repeat runs), MB/s, chunks,
their real cl100k tokens (bpe-openai, counted after the timing: mean, longest, how many are
over the budget, the sum over the corpus's own tokens), and whether every chunk's offsets give
back its text exactly. The chunkers:

  ragidx     ragidx.chunk.chunk_text(text, "markdown", ChunkConfig(chunk_tokens, chunk_overlap,
             **--ragidx-kw)); its tokens are those of `Chunk.input`, what is sent: the
             heading path, then the text. `--ragidx-kw tokenizer=cl100k_base` passes a
             ChunkConfig field (a Python literal, else the plain string).
  chars      MarkdownSplitter(--chars, overlap=4 * chunk_overlap): sized by characters.
  tiktoken   MarkdownSplitter.from_tiktoken_model("text-embedding-3-small", chunk_tokens,
             overlap=chunk_overlap): cl100k inside the Rust crate.
  callback   MarkdownSplitter.from_callback(bpe-openai's cl100k count, chunk_tokens,
             overlap=chunk_overlap): sized by a Python callback.

Then a few facts that are not timings: whether MarkdownSplitter's `chunk_indices` offsets are
characters or UTF-8 bytes (on a non-ASCII text), and whether CodeSplitter works without a
tree-sitter language package.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpe_openai import get_encoding

from ragidx.chunk import chunk_text
from ragidx.config import ChunkConfig

CORPUS = Path.home() / ".cache" / "ragidx-bench" / "corpora" / "md-5000"
MODEL = "text-embedding-3-small"
NAMES = ("ragidx", "chars", "tiktoken", "callback")
ENCODING = get_encoding("cl100k_base")


def tokens(text: str) -> int:
    return len(ENCODING.encode_ordinary(text))


@dataclass(frozen=True)
class Piece:
    """One chunk: what is sent to the model, and its offsets into the document."""

    sent: str
    text: str
    start: int
    end: int


Chunker = Callable[[str], list[Piece]]


def ragidx_chunker(args: argparse.Namespace) -> Chunker:
    config = ChunkConfig(
        chunk_tokens=args.chunk_tokens, chunk_overlap=args.chunk_overlap, **args.ragidx_kw
    )

    def chunk(text: str) -> list[Piece]:
        return [
            Piece(c.input, c.text, c.char_start, c.char_end)
            for c in chunk_text(text, "markdown", config)
        ]

    return chunk


def splitter_chunker(splitter: Any) -> Chunker:
    def chunk(text: str) -> list[Piece]:
        return [
            Piece(piece, piece, start, start + len(piece))
            for start, piece in splitter.chunk_indices(text)
        ]

    return chunk


def chunkers(args: argparse.Namespace) -> dict[str, tuple[str, Chunker]]:
    """Each chunker by name, with the line that describes its settings."""
    from semantic_text_splitter import MarkdownSplitter

    c, o = args.chunk_tokens, args.chunk_overlap
    made: dict[str, tuple[str, Chunker]] = {
        "ragidx": (
            f"chunk_text(..., ChunkConfig(chunk_tokens={c}, chunk_overlap={o}"
            + "".join(f", {k}={v!r}" for k, v in args.ragidx_kw.items())
            + "))",
            ragidx_chunker(args),
        ),
        "chars": (
            f"MarkdownSplitter({args.chars}, overlap={4 * o})",
            splitter_chunker(MarkdownSplitter(args.chars, overlap=4 * o)),
        ),
        "tiktoken": (
            f'MarkdownSplitter.from_tiktoken_model("{MODEL}", {c}, overlap={o})',
            splitter_chunker(MarkdownSplitter.from_tiktoken_model(MODEL, c, overlap=o)),
        ),
        "callback": (
            f"MarkdownSplitter.from_callback(cl100k count by bpe-openai, {c}, overlap={o})",
            splitter_chunker(MarkdownSplitter.from_callback(tokens, c, overlap=o)),
        ),
    }
    return {name: made[name] for name in args.only}


@dataclass
class Result:
    seconds: list[float]
    chunks: int
    sent_tokens: list[int]
    exact: bool
    """Every chunk's offsets give back its text."""


def run(chunk: Chunker, texts: list[str], repeat: int) -> Result:
    seconds, pieces = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        pieces = [chunk(text) for text in texts]
        seconds.append(time.perf_counter() - started)
    # Counted after the clock: not part of any chunker's time.
    flat = [p for doc in pieces for p in doc]
    exact = all(
        text[p.start : p.end] == p.text
        for text, doc in zip(texts, pieces, strict=True)
        for p in doc
    )
    return Result(seconds, len(flat), [tokens(p.sent) for p in flat], exact)


def offsets_kind() -> str:
    """Whether MarkdownSplitter's chunk_indices are character or UTF-8 byte offsets."""
    from semantic_text_splitter import MarkdownSplitter

    text = (
        "# Überschrift\n\n"
        + "Größe und Maß, 東京の天気。 " * 40
        + "\n\n## Zweite\n\nEnde ünd gut.\n"
    )
    pairs = MarkdownSplitter(120).chunk_indices(text)
    raw = text.encode("utf-8")
    chars = all(text[i : i + len(c)] == c for i, c in pairs)
    utf8 = all(raw[i : i + len(c.encode())].decode("utf-8", "replace") == c for i, c in pairs)
    return (
        f"chunk_indices on a non-ASCII text: character offsets {chars}, UTF-8 byte offsets {utf8}"
    )


def code_splitter() -> str:
    """Whether CodeSplitter works as installed (it takes a tree-sitter language object)."""
    from semantic_text_splitter import CodeSplitter

    try:
        import tree_sitter_python  # type: ignore[import-not-found]
    except ImportError:
        return (
            "CodeSplitter: takes a tree-sitter language object; no tree_sitter_python here"
            " (a package per language, e.g. `--with tree-sitter-python`)"
        )
    splitter = CodeSplitter(tree_sitter_python.language(), 200)
    code = "def f(x):\n    return x + 1\n\n\nclass A:\n    def g(self):\n        return 2\n" * 20
    return f"CodeSplitter with tree-sitter-python: {len(splitter.chunks(code))} chunks of 200 chars"


def report(name: str, r: Result, mb: float, corpus_tokens: int, budget: int | None) -> str:
    median = statistics.median(r.seconds)
    over = sum(t > budget for t in r.sent_tokens) if budget else 0
    return (
        f"{name:<9} {median:7.2f} {mb / median:7.1f} {r.chunks:7,}"
        f" {statistics.fmean(r.sent_tokens):9.0f} {max(r.sent_tokens):7,}"
        f" {over if budget else '-':>7} {sum(r.sent_tokens) / corpus_tokens:10.2f}x"
        f" {'yes' if r.exact else 'NO':>7}"
    )


def keyword(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--chunk-overlap", type=int, default=64)
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", type=lambda s: [x for x in s.split(",") if x], default=list(NAMES)
    )
    parser.add_argument(
        "--ragidx-kw",
        type=keyword,
        action="append",
        default=[],
        help="a ChunkConfig field for ragidx's chunker, NAME=VALUE (a Python literal)",
    )
    args = parser.parse_args()
    args.ragidx_kw = dict(args.ragidx_kw)
    return args


def main() -> None:
    args = arguments()
    if hasattr(os, "sched_setaffinity"):  # one core: the Rust splitter could use more
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    paths = sorted(args.corpus.rglob("*.md"))
    if not paths:
        raise SystemExit(f"no .md files under {args.corpus}: run bench/compare.py once")
    texts = [p.read_text(encoding="utf-8") for p in paths]
    size = sum(len(t.encode("utf-8")) for t in texts)
    corpus_tokens = sum(map(tokens, texts))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"corpus: {len(texts):,} files, {size / 1e6:.1f} MB, {corpus_tokens:,} cl100k tokens;"
        f" one core; median of {args.repeat}; load average {load}"
    )
    print(
        f"{'chunker':<9} {'secs':>7} {'MB/s':>7} {'chunks':>7} {'mean tok':>9} {'longest':>7}"
        f" {'over':>7} {'sent/corpus':>11} {'offsets':>7}"
    )
    for name, (what, chunk) in chunkers(args).items():
        result = run(chunk, texts, args.repeat)
        budget = None if name == "chars" else args.chunk_tokens
        print(report(name, result, size / 1e6, corpus_tokens, budget) + f"  {what}")
    print(offsets_kind())
    print(code_splitter())
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
