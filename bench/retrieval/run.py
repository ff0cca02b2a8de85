"""Retrieval quality: recall@5 and MRR of each search mode on a labelled query set.

    uv run python bench/retrieval/run.py [--index-args=--pack]
        [--fillers 250] [--url http://127.0.0.1:PORT/v1] [--work DIR] [--by-kind] [--ranks]
        [--fts-tokenize "porter unicode61 remove_diacritics 2"]

Indexes sample_docs and the generated corpus (`corpus.py`) with all-MiniLM-L6-v2 served by
Infinity (`ragidx.testing.infinity`, started here unless --url names a running server),
with the README's Infinity recipe (`--batch-size 32 --chunk-tokens 200`) plus --index-args,
then runs every query of `queries.jsonl` in vector, text and hybrid modes through the
library's `ragidx.search`.

A query is answered by one file. Hits are chunks: the file ranking is their paths in
order, each file at its best chunk. recall@5 counts the queries whose file is among the
first 5 files; MRR is the mean of 1/rank over the first 10 files (0 beyond). --by-kind adds
the figures for each kind of query (paraphrase, keyword, identifier, cjk, non-english);
--ranks each query's file rank in each mode. --fts-tokenize rebuilds each index's full-text
table with another FTS5 tokenizer before the queries run (the index's own is
`unicode61 remove_diacritics 2`), to measure stemming.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corpus import DEFAULT_FILLERS, generate  # bench scripts run with their folder on sys.path

from ragidx import SearchMode, search
from ragidx.chunk.tokens import space_cjk
from ragidx.embed import Embedder, closing
from ragidx.embed.hashing import STOP_WORDS
from ragidx.query.search import index_embedder
from ragidx.store import SqliteStore
from ragidx.testing.infinity import MODEL

__all__ = [
    "Query",
    "Scores",
    "check_paraphrases",
    "evaluate",
    "index",
    "load_queries",
    "retokenize",
    "scores_of",
]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
QUERIES = HERE / "queries.jsonl"
CORPORA = ("sample_docs", "generated")
MODES = (SearchMode.VECTOR, SearchMode.TEXT, SearchMode.HYBRID)
RECALL_AT = 5
MRR_DEPTH = 10
CHUNKS = 40  # chunks asked for: enough for 10 distinct files on these corpora
INDEX = "--batch-size 32 --chunk-tokens 200"


@dataclass(frozen=True)
class Query:
    corpus: str
    kind: str
    query: str
    file: str  # relative to the corpus root


@dataclass(frozen=True)
class Scores:
    """recall@5 and MRR@10 over `count` queries, and each query's file rank (None: past 10)."""

    recall: float
    mrr: float
    count: int
    ranks: tuple[int | None, ...]


def load_queries(path: Path = QUERIES) -> list[Query]:
    with path.open(encoding="utf-8") as lines:
        return [Query(**json.loads(line)) for line in lines if line.strip()]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP_WORDS}


def check_paraphrases(queries: list[Query], roots: dict[str, Path]) -> list[str]:
    """Problems with the set: a missing file, or a paraphrase sharing a word (or a word's first
    five letters) with its file, as tests/integration/test_infinity.py checks its own."""
    problems = []
    for q in queries:
        target = roots[q.corpus] / q.file
        if not target.is_file():
            problems.append(f"{q.query!r}: no file {target}")
            continue
        if q.kind != "paraphrase":
            continue
        body = _words(target.read_text(encoding="utf-8"))
        stems = {w[:5] for w in body if len(w) >= 5}
        shared = {w for w in _words(q.query) if w in body or (len(w) >= 5 and w[:5] in stems)}
        if shared:
            problems.append(f"{q.query!r} shares {sorted(shared)} with {q.file}")
    return problems


def index(root: Path, db: Path, url: str, extra: list[str]) -> dict[str, object]:
    """Index `root` into `db` through the server at `url`; the run's summary event."""
    args = [
        *("--provider", "openai", "--base-url", url, "--model", MODEL),
        *shlex.split(INDEX),
        *extra,
    ]
    command = [sys.executable, "-m", "ragidx", "index", str(root), "--db", str(db), "--json"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"indexing {root} failed ({done.returncode}): {done.stderr[-2000:]}")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    (summary,) = [e for e in events if e["event"] == "summary"]
    return dict(summary)


def retokenize(db: Path, tokenize: str) -> None:
    """Rebuild the full-text table of `db` with the FTS5 tokenizer `tokenize`."""
    conn = sqlite3.connect(db)
    try:
        conn.create_function("space_cjk", 1, space_cjk, deterministic=True)
        with conn:
            conn.execute("DROP TABLE chunks_fts")
            conn.execute(
                "CREATE VIRTUAL TABLE chunks_fts USING fts5"
                f" (text, content = '', tokenize = '{tokenize}')"
            )
            conn.execute(
                "INSERT INTO chunks_fts (rowid, text) SELECT id, space_cjk(text) FROM chunks"
            )
    finally:
        conn.close()


def evaluate(db: Path, root: Path, url: str, queries: list[Query]) -> dict[SearchMode, Scores]:
    """Each mode's scores for `queries` on the index `db` of the corpus at `root`."""
    return asyncio.run(_evaluate(db, root, url, queries))


async def _evaluate(
    db: Path, root: Path, url: str, queries: list[Query]
) -> dict[SearchMode, Scores]:
    store = SqliteStore.open_for_reading(db)
    try:
        embedder = index_embedder(store, url, 60.0, os.environ)
        return await closing(embedder, _rank_all(store, embedder, root, queries))
    finally:
        store.close()


async def _rank_all(
    store: SqliteStore, embedder: Embedder, root: Path, queries: list[Query]
) -> dict[SearchMode, Scores]:
    results = {}
    prefix = f"{root}{os.sep}"
    for mode in MODES:
        ranks = []
        for q in queries:
            hits = await search(store, embedder, q.query, k=CHUNKS, mode=mode)
            files = list(dict.fromkeys(h.path.removeprefix(prefix) for h in hits))
            rank = files.index(q.file) + 1 if q.file in files[:MRR_DEPTH] else None
            ranks.append(rank)
        results[mode] = scores_of(ranks)
    return results


def scores_of(ranks: list[int | None]) -> Scores:
    """recall@5 and MRR@10 of the file ranks of some queries (None: not in the first 10)."""
    n = max(len(ranks), 1)
    recall = sum(1 for r in ranks if r is not None and r <= RECALL_AT) / n
    mrr = sum(1 / r for r in ranks if r is not None) / n
    return Scores(recall, mrr, len(ranks), tuple(ranks))


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from ragidx.testing.infinity import serve

    with serve() as started:
        yield started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-args", default="", help="more `ragidx index` options")
    parser.add_argument("--fillers", type=int, default=DEFAULT_FILLERS)
    parser.add_argument("--url", help="a running Infinity's base URL (.../v1)")
    parser.add_argument("--work", type=Path, help="where corpora and indexes go (kept)")
    parser.add_argument("--by-kind", action="store_true", help="figures per kind of query")
    parser.add_argument("--ranks", action="store_true", help="each query's file rank per mode")
    parser.add_argument("--fts-tokenize", help="rebuild the full-text table with this tokenizer")
    args = parser.parse_args()

    work = (args.work or Path(tempfile.mkdtemp(prefix="ragidx-retrieval-"))).resolve()
    roots = {"sample_docs": work / "sample_docs", "generated": work / "generated"}
    if not roots["sample_docs"].exists():
        shutil.copytree(ROOT / "sample_docs", roots["sample_docs"])
    if not roots["generated"].exists():
        generate(roots["generated"], fillers=args.fillers)
    queries = load_queries()
    if problems := check_paraphrases(queries, roots):
        print("the query set is not sound:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    extra = shlex.split(args.index_args)
    print(f"index: {INDEX} {args.index_args}".rstrip())
    if args.fts_tokenize:
        print(f"full-text tokenizer: {args.fts_tokenize}")
    print(f"{'corpus':12} {'queries':>7} {'chunks':>7}  " + "  ".join(f"{m:>15}" for m in MODES))
    print(f"{'':12} {'':>7} {'':>7}  " + "  ".join(f"{'recall@5  MRR':>15}" for _ in MODES))
    with _server(args.url) as url:
        for corpus in CORPORA:
            db = work / f"{corpus}.db"
            db.unlink(missing_ok=True)
            started = time.perf_counter()
            summary = index(roots[corpus], db, url, extra)
            seconds = time.perf_counter() - started
            if args.fts_tokenize:
                retokenize(db, args.fts_tokenize)
            chosen = [q for q in queries if q.corpus == corpus]
            scores = evaluate(db, roots[corpus], url, chosen)
            groups = {corpus: list(range(len(chosen)))}
            if args.by_kind:
                for kind in dict.fromkeys(q.kind for q in chosen):
                    groups[f"  {kind}"] = [i for i, q in enumerate(chosen) if q.kind == kind]
            for label, members in groups.items():
                part = {m: scores_of([scores[m].ranks[i] for i in members]) for m in MODES}
                chunks = str(summary["chunks"]) if label == corpus else ""
                cells = "  ".join(f"{part[m].recall:8.3f} {part[m].mrr:6.3f}" for m in MODES)
                print(f"{label:12} {len(members):7} {chunks:>7}  {cells}", flush=True)
            if args.ranks:
                for i, q in enumerate(chosen):
                    ranks = " ".join(f"{scores[m].ranks[i] or '-':>3}" for m in MODES)
                    print(f"    {ranks}  {q.kind:11} {q.query}")
            print(f"{'':12} indexed in {seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
