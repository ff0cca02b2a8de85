"""Full-text query time for unspaced CJK queries: one phrase of all characters (before) against
overlapping pairs (`ragidx.query.search.fts_query`), on an FTS5 table like the index's.

    uv run python bench/cjk_search.py [chunks]

Chunks are tldr-sized (about 150 characters) of Chinese drawn from 2,500 characters with a
Zipf-like spread, so common characters like 的 are in most chunks, as in real text.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time

from ragidx.chunk.tokens import space_cjk
from ragidx.query.search import fts_query

QUERIES = ["查看磁盘使用情况", "显示文件系统的磁盘空间", "压缩文件", "的", "列出目录中的所有文件"]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40_000
    rng = random.Random(13)
    chars = [chr(0x4E00 + i) for i in rng.sample(range(20_000), 2_500)]
    wanted = list(dict.fromkeys("的是在了不和有" + "".join(QUERIES)))
    chars = wanted + [c for c in chars if c not in wanted][: len(chars) - len(wanted)]
    weights = [1 / (rank + 1) for rank in range(len(chars))]
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE chunks_fts USING fts5"
        " (text, content = '', tokenize = 'unicode61 remove_diacritics 2')"
    )
    t = time.perf_counter()
    rows = ((i, space_cjk("".join(rng.choices(chars, weights, k=150)))) for i in range(count))
    conn.executemany("INSERT INTO chunks_fts (rowid, text) VALUES (?, ?)", rows)
    conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')")
    print(f"{count:,} chunks of 150 characters indexed in {time.perf_counter() - t:.1f} s")
    sql = "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT 50"
    for query in QUERIES:
        phrase = '"' + " ".join(query) + '"'
        pairs = fts_query(query)
        assert pairs is not None
        for name, match in (("phrase", phrase), ("pairs", pairs)):
            best, found = float("inf"), 0
            for _ in range(5):
                t = time.perf_counter()
                found = len(conn.execute(sql, (match,)).fetchall())
                best = min(best, time.perf_counter() - t)
            print(f"{query}  {name:6} {best * 1000:7.1f} ms  {found:2} hits")


if __name__ == "__main__":
    main()
