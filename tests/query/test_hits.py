"""Search through the library: hits are plain values, which report/ renders without the store."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from helpers import write

from ragidx import HashEmbedder, IndexConfig, SearchHit, index, search
from ragidx.store import SqliteStore

DOCS = {
    "docs/retries.md": "# Retries\n\n## Backoff\n\nA retry waits with jittered backoff.\n",
    "docs/other.md": "# Other\n\nNothing about waiting here.\n",
}


def test_hits_carry_where_and_what_matched_as_plain_values(tmp_path: Path) -> None:
    write(tmp_path, DOCS)
    embedder = HashEmbedder()
    db = tmp_path / "idx.db"
    index([tmp_path / "docs"], embedder, IndexConfig(db_path=db))
    store = SqliteStore.open_for_reading(db)
    try:
        hits = asyncio.run(search(store, embedder, "jittered backoff", k=1))
    finally:
        store.close()
    (hit,) = hits
    assert isinstance(hit, SearchHit)
    assert hit.path == str(tmp_path / "docs/retries.md")
    assert hit.ordinal == 0 and hit.heading_path == ("Retries", "Backoff")
    assert "jittered backoff" in hit.text
    text = (tmp_path / "docs/retries.md").read_text()
    assert text[hit.char_start : hit.char_end].strip() == hit.text.strip()
    assert hit.line_start <= 5 <= hit.line_end
    assert hit.text_rank == 1 and hit.vector_rank == 1 and hit.score > 0
    plain = (str, int, float, tuple, type(None))
    assert all(isinstance(getattr(hit, f.name), plain) for f in dataclasses.fields(hit))
